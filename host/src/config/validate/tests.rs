use super::*;

#[test]
fn serde_wording_becomes_toml_wording() {
    assert_eq!(
        friendly_serde_message("invalid type: string \"3\", expected u32"),
        "invalid type: string \"3\", expected a whole number"
    );
    assert_eq!(
        friendly_serde_message("unknown field `stor`, expected `store` or `n`"),
        "unknown key `stor`, expected `store` or `n`"
    );
    assert_eq!(
        friendly_serde_message("invalid type: string \"x\", expected struct HostSection"),
        "invalid type: string \"x\", expected a table"
    );
}
