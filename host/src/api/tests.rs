use super::*;

#[test]
fn a_token_names_its_tenant_and_no_other() {
    let tokens = ApiTokens::new()
        .with("acme", &Secret::new("token-acme"))
        .and_then(|t| t.with("globex", &Secret::new("token-globex")))
        .unwrap();
    assert_eq!(tokens.tenant_of("token-acme"), Some("acme"));
    assert_eq!(tokens.tenant_of("token-globex"), Some("globex"));
    assert_eq!(tokens.tenant_of("token-acm"), None);
    assert_eq!(tokens.tenant_of(""), None);
}

#[test]
fn a_token_shared_by_two_tenants_is_refused() {
    let shared = Secret::new("same");
    let result = ApiTokens::new()
        .with("acme", &shared)
        .and_then(|t| t.with("globex", &shared));
    assert!(result.is_err());
    assert!(ApiTokens::new().with("acme", &Secret::new("")).is_err());
}

#[test]
fn bearer_tokens_are_read_from_the_authorization_header() {
    let mut headers = HeaderMap::new();
    assert_eq!(bearer(&headers), None);
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer abc"),
    );
    assert_eq!(bearer(&headers), Some("abc"));
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("bearer  abc "),
    );
    assert_eq!(bearer(&headers), Some("abc"));
    headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
    assert_eq!(bearer(&headers), None);
}

#[test]
fn every_error_code_is_distinct() {
    let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), ErrorCode::ALL.len());
}
