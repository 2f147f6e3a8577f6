use super::*;

fn request(host: &str, peer: Option<&str>) -> Request {
    let mut request = Request::builder()
        .uri("/overview")
        .header(header::HOST, host)
        .body(Body::empty())
        .unwrap();
    if let Some(peer) = peer {
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    request
}

#[test]
fn loopback_means_a_loopback_host_name_and_peer() {
    assert!(from_loopback(&request("127.0.0.1:8081", None)));
    assert!(from_loopback(&request("localhost:8081", None)));
    assert!(from_loopback(&request("[::1]:8081", Some("[::1]:5000"))));
    assert!(!from_loopback(&request("evil.example", None)));
    assert!(!from_loopback(&request("127.0.0.1.evil.example", None)));
    assert!(!from_loopback(&request(
        "127.0.0.1:8081",
        Some("10.0.0.7:5000")
    )));
}

#[test]
fn only_same_origin_posts_pass() {
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    };
    assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
    assert!(!cross_site(&headers(&[
        ("sec-fetch-site", "same-origin"),
        ("origin", "null")
    ])));
    assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
    assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
    assert!(!cross_site(&headers(&[
        ("origin", "http://127.0.0.1:8081"),
        ("host", "127.0.0.1:8081")
    ])));
    assert!(cross_site(&headers(&[
        ("origin", "http://127.0.0.1:9999"),
        ("host", "127.0.0.1:8081")
    ])));
    assert!(cross_site(&headers(&[
        ("origin", "null"),
        ("host", "127.0.0.1:8081")
    ])));
    assert!(!cross_site(&headers(&[("host", "127.0.0.1:8081")])));
}
