-- Hosts the proxy listener tunnels without terminating TLS (agw passthrough).
CREATE TABLE passthrough (
    host text PRIMARY KEY,
    doc jsonb NOT NULL
);
