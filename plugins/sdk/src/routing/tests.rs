//! The routing module's tests (natively: the roster, the names, the context).

use super::*;

fn agent(handle: u32, id: &str, capacity: u32) -> Agent {
    Agent {
        handle,
        id: id.to_string(),
        name: id.to_uppercase(),
        skills: vec!["tim".to_string()],
        languages: vec!["it".to_string()],
        accounts: Vec::new(),
        capacity,
    }
}

fn name(handle: u32, text: &str) -> Name {
    Name {
        handle,
        text: text.to_string(),
    }
}

/// Announces the names [`conversation`] uses.
fn announce_names() {
    update_names(vec![
        name(0, "twitter"),
        name(1, "tim_official"),
        name(2, "tim"),
    ]);
}

/// A conversation on `twitter`, account `tim_official`, brand `tim` (handles 0, 1, 2).
fn conversation() -> router::Conversation {
    router::Conversation {
        channel: 0,
        account: 1,
        brand: Some(2),
        language: None,
        kind: MessageKind::PrivateMessage,
        priority: 0,
        previous_agent: None,
        previous_agent_at: None,
        waiting_since: 1,
    }
}

/// What a call would ask the host, given beforehand (the import does not run in a
/// native test): the methods then answer from their cells, as they do after asking.
fn answer_for_the_host(context: &RoutingContext<'_>, previous_agent: Option<&str>) {
    let conversation = &context.conversation;
    let _ = conversation.id.set("c1".to_string());
    let _ = conversation.customer.set("42".to_string());
    let _ = conversation.text.set("aiuto".to_string());
    let _ = conversation
        .previous_agent
        .set(previous_agent.map(str::to_string));
    let _ = context.queue.set(QueueStats {
        waiting: 3,
        oldest_wait_ms: 4,
        average_handle_ms: 5,
    });
}

/// Runs a policy that reads every candidate's id over `rows`.
fn ids(rows: &[CandidateRow]) -> Result<Vec<String>> {
    announce_names();
    with_context(&conversation(), rows, 5, |context| {
        Ok(context.candidates().map(|op| op.id.to_string()).collect())
    })
}

#[test]
fn candidates_join_the_rows_with_the_announced_profiles() {
    update_roster(vec![agent(0, "anna", 3), agent(2, "bruno", 1)], Vec::new());
    announce_names();
    let rows = [
        CandidateRow::raw(2, 1, 0, 1, 77),
        CandidateRow::raw(0, 0, 1, 0, 0),
    ];
    let seen = with_context(&conversation(), &rows, 5, |context| {
        Ok(context
            .candidates()
            .map(|op| {
                (
                    op.id.to_string(),
                    op.load,
                    op.capacity,
                    op.presence,
                    op.last_assigned_at,
                )
            })
            .collect::<Vec<_>>())
    });
    assert_eq!(
        seen.ok(),
        Some(vec![
            ("bruno".to_string(), 1, 1, Presence::Online, Some(77)),
            ("anna".to_string(), 0, 3, Presence::Away, None),
        ])
    );
}

#[test]
fn a_row_naming_an_unannounced_handle_fails_the_call_that_reads_it() {
    update_roster(vec![agent(0, "anna", 3)], vec![]);
    let rows = [
        CandidateRow::raw(0, 0, 0, 0, 0),
        CandidateRow::raw(5, 0, 0, 0, 0),
    ];
    match ids(&rows) {
        Err(PluginError::InvalidInput(detail)) => {
            assert!(
                detail.contains("handle 5 without announcing it"),
                "{detail}"
            )
        }
        other => panic!("expected invalid-input, got {other:?}"),
    }
    // A dropped handle is unannounced again.
    update_roster(Vec::new(), vec![0]);
    assert!(ids(&rows[..1]).is_err());
}

#[test]
fn a_row_with_bytes_the_contract_does_not_define_fails_the_call() {
    update_roster(vec![agent(0, "anna", 3)], Vec::new());
    for row in [
        CandidateRow::raw(0, 0, 3, 0, 0),
        CandidateRow::raw(0, 0, 0, 2, 0),
    ] {
        match ids(&[row]) {
            Err(PluginError::InvalidInput(detail)) => {
                assert!(detail.contains("contract 0.3 does not define"), "{detail}")
            }
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }
}

#[test]
fn the_conversation_reads_the_announced_names_and_the_hosts_answers() {
    announce_names();
    // Announced later, under a handle past a gap.
    update_names(vec![name(9, "it")]);
    let mut raw = conversation();
    raw.language = Some(9);
    raw.priority = 4;
    raw.previous_agent_at = Some(70);
    let seen = with_context(&raw, &[], 80, |context| {
        answer_for_the_host(context, Some("ext-7"));
        let c = &context.conversation;
        let q = context.queue();
        Ok(format!(
            "{}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{:?}|{:?}|{}|{}|{}|{}|{}",
            c.id(),
            c.channel(),
            c.account(),
            c.brand(),
            c.language(),
            c.customer(),
            c.kind as u8,
            c.text(),
            c.priority,
            c.previous_agent(),
            c.previous_agent_at,
            c.waiting_since,
            q.waiting,
            q.oldest_wait_ms,
            q.average_handle_ms,
            context.now
        ))
    });
    assert_eq!(
        seen.ok().as_deref(),
        Some(
            "c1|twitter|tim_official|Some(\"tim\")|Some(\"it\")|42|1|aiuto|4|\
             Some(\"ext-7\")|Some(70)|1|3|4|5|80"
        )
    );
}

#[test]
fn an_unannounced_name_handle_fails_the_call_that_reads_it() {
    announce_names();
    type Change = fn(&mut router::Conversation);
    type Read = fn(&Conversation<'_>) -> bool;
    let cases: [(&str, Change, Read); 4] = [
        ("channel", |c| c.channel = 7, |c| c.channel().is_empty()),
        ("account", |c| c.account = 8, |c| c.account().is_empty()),
        ("brand", |c| c.brand = Some(3), |c| c.brand() == Some("")),
        (
            "language",
            |c| c.language = Some(11),
            |c| c.language() == Some(""),
        ),
    ];
    for (field, change, read) in cases {
        let mut raw = conversation();
        change(&mut raw);
        // A policy that never reads the field decides as usual.
        assert_eq!(
            with_context(&raw, &[], 5, |_| Ok(1)).ok(),
            Some(1),
            "{field}"
        );
        // One that reads it sees an empty string, and its decision is refused.
        let mut empty = false;
        let result = with_context(&raw, &[], 5, |context| {
            empty = read(&context.conversation);
            Ok(1)
        });
        assert!(empty, "{field}");
        match result {
            Err(PluginError::InvalidInput(detail)) => {
                assert!(
                    detail.contains(&format!("conversation's {field} by name handle ")),
                    "{detail}"
                );
                assert!(detail.contains("without announcing it"), "{detail}");
            }
            other => panic!("{field}: expected invalid-input, got {other:?}"),
        }
    }
}

#[test]
fn the_previous_agent_is_read_from_the_roster_when_announced() {
    update_roster(vec![agent(0, "anna", 3), agent(4, "bruno", 1)], Vec::new());
    announce_names();
    let mut raw = conversation();
    raw.previous_agent = Some(4);
    // No answer given for the host: the import is not asked (natively it would panic).
    let seen = with_context(&raw, &[], 5, |context| {
        Ok(context.conversation.previous_agent().map(str::to_string))
    });
    assert_eq!(seen.ok(), Some(Some("bruno".to_string())));
    // A handle the instance does not know (dropped since): the host's answer.
    update_roster(Vec::new(), vec![4]);
    let seen = with_context(&raw, &[], 5, |context| {
        answer_for_the_host(context, Some("bruno"));
        Ok(context.conversation.previous_agent().map(str::to_string))
    });
    assert_eq!(seen.ok(), Some(Some("bruno".to_string())));
    // No handle: the host's answer, none here.
    raw.previous_agent = None;
    let seen = with_context(&raw, &[], 5, |context| {
        answer_for_the_host(context, None);
        Ok(context.conversation.previous_agent().map(str::to_string))
    });
    assert_eq!(seen.ok(), Some(None));
}

#[test]
fn reason_writes_signed_integers_and_characters() {
    let text = crate::reason!(
        'Δ',
        " ",
        -5i32,
        " ",
        0i64,
        " ",
        i64::MIN,
        " ",
        i8::MAX,
        " ",
        -1isize
    );
    assert_eq!(text, "Δ -5 0 -9223372036854775808 127 -1");
}

#[test]
fn reason_writes_text_and_decimal_numbers() {
    let id = String::from("op-3");
    let text = crate::reason!(
        "least-loaded: ",
        id,
        " holds ",
        0u8,
        "/",
        4u32,
        " ",
        u64::MAX,
        " ",
        u64::from(u32::MAX) + 1,
        " ",
        10usize
    );
    assert_eq!(
        text,
        "least-loaded: op-3 holds 0/4 18446744073709551615 4294967296 10"
    );
}
