// The warehouse's PostgreSQL front end as JDBC tools (DBeaver, FineBI,
// FineReport) reach it: Debian's pgJDBC driver connects, reads
// DatabaseMetaData and runs prepared statements.
//
// Usage: java -cp /usr/share/java/postgresql.jar:DIR JdbcCheck URL USER PASSWORD EXPECTED_CASES
// Prints one line per check; exits 1 at the first that fails.

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class JdbcCheck {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.out.println("FAILED: " + what);
            System.exit(1);
        }
        System.out.println(what);
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        long expected = Long.parseLong(args[3]);
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        try (Connection c = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = c.getMetaData();
            check(md.getDatabaseProductName().equals("PostgreSQL"), "product: " + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) {
                    tables.add(rs.getString("TABLE_NAME"));
                }
            }
            check(tables.contains("cases") && tables.contains("case_counts"), "tables: " + tables);
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = md.getColumns(null, "public", "cases", "%")) {
                while (rs.next()) {
                    columns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME"));
                }
            }
            check(columns.contains("case_no:text") && columns.contains("submitted_at:timestamptz"), "columns of cases: " + columns.size());
            // Prepared statements: five runs, so the driver switches to a named server-side statement and binary results.
            try (PreparedStatement ps = c.prepareStatement("SELECT COUNT(*) AS n, MAX(submitted_at) AS last FROM cases WHERE month >= ? AND online = ?")) {
                for (int i = 0; i < 6; i++) {
                    ps.setString(1, "0000-00");
                    ps.setBoolean(2, true);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next() && rs.getLong("n") > 0 && rs.getLong("n") <= expected && rs.getTimestamp("last") != null,
                                "prepared run " + (i + 1) + ": " + rs.getLong("n") + " online cases, last " + rs.getTimestamp("last"));
                    }
                }
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT COUNT(*) FROM cases WHERE month >= ?")) {
                ps.setString(1, "0000-00");
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && rs.getLong(1) == expected, "all cases: " + expected);
                }
            }
            // A cursor-based read (fetch size, inside a transaction).
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.setFetchSize(1000);
                long n = 0;
                try (ResultSet rs = s.executeQuery("SELECT case_no FROM cases")) {
                    while (rs.next()) {
                        n++;
                    }
                }
                check(n == expected, "fetched in pages of 1000: " + n);
            }
            c.commit();
            c.setAutoCommit(true);
            try (Statement s = c.createStatement()) {
                s.executeUpdate("DROP TABLE cases");
                check(false, "DROP TABLE was not refused");
            } catch (SQLException e) {
                check("25006".equals(e.getSQLState()), "refused: " + e.getSQLState());
            }
        }
        System.out.println("ok");
    }
}
