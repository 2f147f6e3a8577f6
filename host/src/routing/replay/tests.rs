    use super::*;

    const SAMPLE: &str = r#"
# a comment
{"type":"operator","at":"2026-03-02T08:00:00Z","id":"marco","skills":["tim"],"capacity":2}
{"type":"message","at":"2026-03-02T09:15:00Z","channel":"twitter","account":"TIM_Official","conversation":"tw-1","customer":"1","text":"ciao","brand":"tim"}
{"type":"reply","conversation":"tw-1","after_s":90}
{"type":"resolve","conversation":"tw-1","after_s":420}
{"type":"presence","at":1772442000000,"operator":"marco","presence":"away"}
"#;

    #[test]
    fn events_parse_and_sort_by_time() {
        let events = parse_events("sample", SAMPLE).unwrap();
        assert_eq!(events.timed.len(), 3);
        // The presence change (09:00) sorts before the message (09:15).
        assert!(matches!(
            events.timed[1].2,
            TimedEvent::Presence(_, Presence::Away)
        ));
        assert_eq!(events.timed[1].1, 7, "the line number is kept");
        assert_eq!(
            events.handling["tw-1"],
            Handling {
                reply_after_ms: Some(90_000),
                resolve_after_ms: Some(420_000)
            }
        );
        let TimedEvent::Operator(operator, presence) = &events.timed[0].2 else {
            panic!("expected the operator first");
        };
        assert_eq!(operator.name, "");
        assert_eq!(*presence, Presence::Online);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number_and_reason() {
        let cases = [
            (
                r#"{"type":"message","at":"2026-03-02T09:15:00Z","channel":"twitter"}"#,
                "missing field",
            ),
            (
                r#"{"type":"reply","conversation":"nope","after_s":1}"#,
                "has no message before this line",
            ),
            (
                r#"{"type":"reply","at":5,"conversation":"x","after_s":1}"#,
                "not `at`",
            ),
            (
                r#"{"type":"presence","at":"today","operator":"a","presence":"online"}"#,
                "RFC 3339",
            ),
            (r#"{"type":"holiday","at":1}"#, "unknown type `holiday`"),
            (
                r#"{"type":"message","at":1,"channel":"t","account":"a","conversation":"k","customer":"c","text":"x","presence":"online"}"#,
                "unknown field `presence`",
            ),
            (
                r#"{"type":"presence","at":1,"operator":"a"}"#,
                "missing field `presence`",
            ),
            (
                r#"{"type":"operator","at":1,"id":"a","capacity":1,"shoe_size":43}"#,
                "unknown field `shoe_size`",
            ),
        ];
        for (line, expected) in cases {
            let text = format!("\n{line}\n");
            let err = parse_events("day.jsonl", &text).unwrap_err().to_string();
            assert!(err.starts_with("day.jsonl:2: "), "{err}");
            assert!(err.contains(expected), "{line}: {err}");
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&values, 50), 10);
        assert_eq!(percentile(&values, 95), 19);
        assert_eq!(percentile(&[7], 95), 7);
        assert_eq!(percentile(&[], 50), 0);
    }
