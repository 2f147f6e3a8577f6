use super::redacted_url;

#[test]
fn a_shown_store_url_keeps_only_scheme_host_port_and_database() {
    for (url, shown) in [
        (
            "postgres://centralino:s3cret@db.example:5432/centralino",
            "postgres://***@db.example:5432/centralino",
        ),
        (
            "postgres://db.example/centralino?password=s3cret&sslmode=require",
            "postgres://db.example/centralino?***",
        ),
        (
            "postgresql://u:p@ss@db/c?user=x&password=y#frag",
            "postgresql://***@db/c?***",
        ),
        (
            "postgres://db.example/centralino",
            "postgres://db.example/centralino",
        ),
        (
            "postgres://db.example/centralino#x",
            "postgres://db.example/centralino",
        ),
        (
            "sqlite:///var/lib/centralino.db?mode=rwc",
            "sqlite:///var/lib/centralino.db?***",
        ),
        ("sqlite::memory:", "sqlite::memory:"),
        ("mysql://localhost/db", "mysql://localhost/db"),
    ] {
        assert_eq!(redacted_url(url), shown, "{url}");
    }
}
