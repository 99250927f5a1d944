//! The store's error type.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no backend we support.
    #[error("unsupported database URL {url:?}: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl { url: String },
    /// Could not prepare the SQLite file's directory.
    #[error("cannot create directory {path} for the SQLite database: {source}")]
    CreateDir { path: String, source: std::io::Error },
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is not one the domain knows (the row was written by something else).
    #[error("stored {table}.{column} has unexpected value {value:?}")]
    Corrupt { table: &'static str, column: &'static str, value: String },
    /// A referenced row does not exist.
    #[error("{what} {key:?} not found")]
    NotFound { what: &'static str, key: String },
    /// A row with this key already exists.
    #[error("{what} {key:?} already exists")]
    AlreadyExists { what: &'static str, key: String },
    /// The operation does not apply to this backend or input.
    #[error("not supported: {what}")]
    Unsupported { what: &'static str },
}

impl StoreError {
    /// True when the error is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// Shorthand for results of store operations.
pub type StoreResult<T> = Result<T, StoreError>;
