-- Each connector's new changes by the hour of the partner's change time: the
-- history its arrival rhythm (per weekday and hour) is learned from, so lag is
-- judged against each feed's own rhythm (warehouse::alerts::Rhythm).
CREATE TABLE connector_arrivals (
    connector TEXT NOT NULL,
    hour_start TEXT NOT NULL,
    records INTEGER NOT NULL,
    PRIMARY KEY (connector, hour_start)
);
