    use super::*;

    fn office_hours() -> WorkingHours {
        serde_json::from_str(
            r#"{"utc_offset_minutes": 60,
                "mon": ["09:00-13:00", "14:00-18:00"],
                "fri": ["09:00-13:00"]}"#,
        )
        .unwrap()
    }

    #[test]
    fn working_hours_are_read_in_local_time() {
        let hours = office_hours();
        // Monday 2026-03-02, 08:30 UTC is 09:30 local: working.
        assert!(hours.contains(at(2026, 3, 2, 8, 30)));
        // 12:30 UTC is 13:30 local: lunch.
        assert!(!hours.contains(at(2026, 3, 2, 12, 30)));
        // 07:59 UTC is 08:59 local: not yet.
        assert!(!hours.contains(at(2026, 3, 2, 7, 59)));
        // Tuesday: a day off.
        assert!(!hours.contains(at(2026, 3, 3, 9, 0)));
        // Friday afternoon: off.
        assert!(!hours.contains(at(2026, 3, 6, 14, 0)));
    }

    #[test]
    fn next_shift_start_skips_to_the_next_span() {
        let hours = office_hours();
        // Monday 12:30 UTC (lunch) → 13:00 UTC (14:00 local).
        assert_eq!(
            hours.next_start_after(at(2026, 3, 2, 12, 30)),
            Some(at(2026, 3, 2, 13, 0))
        );
        // Monday evening → Friday 08:00 UTC.
        assert_eq!(
            hours.next_start_after(at(2026, 3, 2, 18, 0)),
            Some(at(2026, 3, 6, 8, 0))
        );
    }

    #[test]
    fn online_outside_working_hours_counts_as_away() {
        let mut roster = Roster::default();
        let operator = Operator::new("marco", 2).hours(office_hours());
        roster.upsert(operator, Presence::Online);
        let sunday = at(2026, 3, 8, 10, 0);
        assert_eq!(
            roster.effective_presence("marco", sunday),
            Some(Presence::Away)
        );
        assert!(!roster.is_available("marco", sunday));
        assert_eq!(roster.agents(sunday, &[])[0].presence, Presence::Away);
        let monday = at(2026, 3, 2, 9, 0);
        assert!(roster.is_available("marco", monday));
    }

    #[test]
    fn a_seat_is_never_taken_beyond_capacity() {
        let mut roster = Roster::default();
        roster.upsert(Operator::new("sara", 1), Presence::Online);
        roster.take_seat("sara", 1).unwrap();
        assert!(matches!(
            roster.take_seat("sara", 2),
            Err(RoutingError::Unavailable(_))
        ));
        assert_eq!(roster.state("sara").unwrap().load, 1);
        roster.free_seat("sara");
        roster.take_seat("sara", 3).unwrap();
        assert_eq!(roster.state("sara").unwrap().last_assigned_at, Some(3));
    }

    #[test]
    fn bad_spans_and_accounts_are_refused_with_the_expected_form() {
        let err = serde_json::from_str::<WorkingHours>(r#"{"mon": ["18:00-09:00"]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("split a night shift"), "{err}");
        let err = "TIM_Marco".parse::<ChannelAccount>().unwrap_err();
        assert!(err.contains("channel:id"), "{err}");
    }
