//! Polling leases: one host polls an account at a time, a lease moves when its holder
//! stops renewing it, and a host that lost its lease cannot commit a stale cursor. Then the
//! must-show: two `centralino` processes on one PostgreSQL database, the X API emulator
//! serving DMs continuously (picked up by polling), the lease holder killed with SIGKILL
//! mid-run: the other host takes the lease over within the lease time, and every DM the
//! emulator served reaches the CRM exactly once.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use centralino::clock::ManualClock;
use centralino::store::Store;
use centralino::store::leases::{Acquired, LeaseHolder, LeaseLost, lease_ttl};
use centralino::types::{Message, MessageKind, Person};
use centralino_emulators::XApi;

use crate::component;
use crate::store::{TestStore, fresh_postgres_database, postgres_url, stores};
use crate::support::{CrmRecorder, eventually_within, free_ports};

fn dm(id: &str, text: &str) -> Message {
    Message {
        external_id: id.to_string(),
        account: "1001".to_string(),
        conversation_key: format!("dm:1001:{id}"),
        author: Person {
            id: "42".to_string(),
            handle: None,
            display_name: None,
        },
        text: text.to_string(),
        kind: MessageKind::PrivateMessage,
        in_reply_to: None,
        attachments: Vec::new(),
        created_at: 1_795_856_400_000,
        extra: Vec::new(),
    }
}

async fn acquire(store: &Store, holder: &LeaseHolder) -> Acquired {
    store
        .acquire_poll_lease(
            "default",
            "twitter",
            "1001",
            holder,
            Duration::from_millis(400),
        )
        .await
        .unwrap()
}

#[test]
fn the_lease_time_follows_the_poll_interval_unless_configured() {
    let s = Duration::from_secs;
    assert_eq!(lease_ttl(None, Some(s(60))), s(180));
    assert_eq!(lease_ttl(None, Some(s(1))), s(10));
    assert_eq!(lease_ttl(None, None), s(10));
    assert_eq!(lease_ttl(Some(s(3)), Some(s(1))), s(3));
    // Not longer than the interval: the lease would lapse between two polls of its holder.
    assert_eq!(lease_ttl(Some(s(30)), Some(s(60))), s(120));
}

#[tokio::test]
async fn a_lease_has_one_holder_moves_when_it_lapses_and_fences_the_old_holder() {
    for TestStore { store, backend, .. } in stores().await {
        eprintln!("backend: {backend}");
        // The store on a clock the test moves: the lease lapses when the test says so.
        let clock = ManualClock::at_system_time();
        let store = store.with_clock(Arc::new(clock.clone()));
        let ttl = Duration::from_millis(400); // as `acquire` asks
        let a = LeaseHolder::new("host-a", None);
        let b = LeaseHolder::new("host-b", None);
        let Acquired::Held(fence_a) = acquire(&store, &a).await else {
            panic!("a free lease is granted");
        };
        assert_eq!(fence_a.generation, 1);
        assert_eq!(
            acquire(&store, &b).await,
            Acquired::Elsewhere("host-a".to_string())
        );
        // Renewing keeps the generation.
        let Acquired::Held(renewed) = acquire(&store, &a).await else {
            panic!("the holder renews its lease");
        };
        assert_eq!(renewed, fence_a);
        store
            .ingest_polled_fenced(&fence_a, vec![dm("1", "ciao")], Some("c1"))
            .await
            .unwrap();

        // A stops renewing (stalled, or dead); once the lease lapses B takes it over, and
        // not a millisecond before.
        clock.advance(ttl - Duration::from_millis(1));
        assert_eq!(
            acquire(&store, &b).await,
            Acquired::Elsewhere("host-a".to_string())
        );
        clock.advance(Duration::from_millis(1));
        let Acquired::Held(fence_b) = acquire(&store, &b).await else {
            panic!("a lapsed lease is taken over");
        };
        assert_eq!(fence_b.generation, 2);
        let lease = store
            .poll_lease("default", "twitter", "1001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((lease.holder.as_str(), lease.generation), ("host-b", 2));

        // A wakes up and tries to commit what it polled with its old cursor: fenced out,
        // nothing written, the cursor stays B's to move.
        let stale = store
            .ingest_polled_fenced(&fence_a, vec![dm("2", "stale")], Some("c0"))
            .await
            .unwrap_err();
        assert!(stale.downcast_ref::<LeaseLost>().is_some(), "{stale:#}");
        assert_eq!(store.message_count("default").await.unwrap(), 1);
        assert_eq!(
            store
                .cursor("default", "twitter", "1001")
                .await
                .unwrap()
                .as_deref(),
            Some("c1")
        );
        store
            .ingest_polled_fenced(&fence_b, vec![dm("2", "nuovo")], Some("c2"))
            .await
            .unwrap();
        assert_eq!(store.message_count("default").await.unwrap(), 2);

        // A clean stop releases B's leases at once: A gets the account back without waiting.
        assert_eq!(b.stop(&store).await.unwrap(), 1);
        let Acquired::Held(again) = acquire(&store, &a).await else {
            panic!("a released lease is free");
        };
        assert_eq!(again.generation, 3);

        // A host restarted under the same id takes its lease back at once, fencing the
        // old instance.
        let a2 = LeaseHolder::new("host-a", None);
        let Acquired::Held(restarted) = acquire(&store, &a2).await else {
            panic!("the same host id takes its own lease back");
        };
        assert_eq!(restarted.generation, 4);
        assert!(
            store
                .ingest_polled_fenced(&again, vec![], Some("old"))
                .await
                .is_err()
        );
    }
}

// ---- two hosts on one PostgreSQL ----

const TTL_SECS: u64 = 3;
const POLL_SECS: u64 = 1;

struct Process {
    id: &'static str,
    port: u16,
    child: Child,
}

/// Killed (SIGKILL) when dropped, so a failing test leaves no host behind.
impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_host(
    dir: &std::path::Path,
    id: &'static str,
    store_url: &str,
    crm_url: &str,
    x: &XApi,
) -> Process {
    let [port, admin] = free_ports();
    let plugins = component("twitter").parent().unwrap().to_path_buf();
    let config = dir.join(format!("{id}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"[host]
store = "env:LEASE_TEST_STORE"
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
plugin_dir = "{plugins}"
host_id = "{id}"
crm_webhook = "{crm_url}"
crm_webhook_secret = "env:LEASE_TEST_CRM_SECRET"
poll_lease_ttl_secs = {TTL_SECS}

[[connectors]]
name = "twitter"
plugin = "twitter"
poll_interval_secs = {POLL_SECS}
allowed_hosts = ["{authority}"]
settings = {{ api_base = "{base}" }}
secrets = {{ consumer_secret = "env:LEASE_TEST_CONSUMER_SECRET" }}

[[connectors.accounts]]
id = "1001"
handle = "TIM_Official"
credential = "env:LEASE_TEST_X_TOKEN"
"#,
            plugins = plugins.display(),
            authority = x.authority(),
            base = x.base_url(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(format!("/tmp/lease-{id}.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_centralino"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("LEASE_TEST_STORE", store_url)
        .env("LEASE_TEST_CRM_SECRET", "lease-test-crm-secret")
        .env("LEASE_TEST_CONSUMER_SECRET", "lease-test-consumer-secret")
        .env("LEASE_TEST_X_TOKEN", "token-tim")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Process { id, port, child }
}

async fn wait_ready(client: &reqwest::Client, process: &mut Process) {
    let what = format!("host {} to start", process.id);
    eventually_within(Duration::from_secs(120), &what, async || {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!(
                "host {} exited with {status} (see /tmp/lease-{}.log)",
                process.id, process.id
            );
        }
        client
            .get(format!("http://127.0.0.1:{}/healthz", process.port))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
}

async fn holder(store: &Store) -> Option<(String, i64)> {
    store
        .poll_lease("default", "twitter", "1001")
        .await
        .unwrap()
        .filter(|lease| lease.expires_at > 0)
        .map(|lease| (lease.holder, lease.generation))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_postgres_one_killed_the_other_takes_over_its_polling_and_nothing_is_lost_or_doubled()
 {
    let Some(base) = postgres_url() else {
        eprintln!(
            "SKIPPED: CENTRALINO_TEST_POSTGRES is not set; this test needs PostgreSQL \
             (`cargo xtask test` starts one)"
        );
        return;
    };
    let store_url = fresh_postgres_database(&base).await;
    let store = Store::open(&store_url).await.unwrap();
    let x = XApi::start().await.unwrap();
    x.add_user("1001", "TIM_Official", "TIM", "token-tim");
    let crm = CrmRecorder::start().await;
    let crm_url = crm.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    let mut hosts = vec![
        start_host(dir.path(), "host-a", &store_url, &crm_url, &x),
        start_host(dir.path(), "host-b", &store_url, &crm_url, &x),
    ];
    for host in &mut hosts {
        wait_ready(&client, host).await;
    }
    // One of them holds the account's lease.
    let mut first = None;
    eventually_within(
        Duration::from_secs(10),
        "a host to take the lease",
        async || {
            first = holder(&store).await;
            first.is_some()
        },
    )
    .await;
    let first = first.unwrap();

    // Customers write DMs continuously, ten a second.
    let producing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let producer = {
        let (x, producing) = (x.clone(), producing.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while producing.load(std::sync::atomic::Ordering::SeqCst) {
                let customer = format!("{}", 5_000 + i % 40);
                x.send_dm(&customer, "1001", &format!("messaggio diretto {i}"));
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let dm_polls = || {
        x.requests()
            .iter()
            .filter(|r| r.path == "/2/dm_events")
            .count()
    };
    let (run_started, polls_before) = (Instant::now(), dm_polls());
    tokio::time::sleep(Duration::from_secs(4)).await;

    // SIGKILL the lease holder mid-run: it never releases anything.
    let victim = hosts.iter().position(|h| h.id == first.0).unwrap();
    let mut victim = hosts.remove(victim);
    let killed_at = Instant::now();
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let survivor = hosts.pop().unwrap();
    let mut takeover = Duration::ZERO;
    let what = format!("{} to take the lease over", survivor.id);
    eventually_within(Duration::from_secs(30), &what, async || {
        let Some((who, generation)) = holder(&store).await else {
            return false;
        };
        if who != survivor.id {
            return false;
        }
        assert!(generation > first.1, "a takeover moves the generation");
        takeover = killed_at.elapsed();
        true
    })
    .await;
    eprintln!(
        "{} killed; {} took the polling lease over {:.2} s later (lease {TTL_SECS} s, poll every {POLL_SECS} s)",
        victim.id,
        survivor.id,
        takeover.as_secs_f64()
    );
    assert!(
        takeover <= Duration::from_secs(TTL_SECS + POLL_SECS) + Duration::from_millis(1500),
        "takeover took {takeover:?}"
    );

    tokio::time::sleep(Duration::from_secs(4)).await;
    producing.store(false, std::sync::atomic::Ordering::SeqCst);
    producer.await.unwrap();
    let (run, polls) = (run_started.elapsed(), dm_polls() - polls_before);
    let served: BTreeSet<String> = x.dms().into_iter().map(|d| d.id).collect();
    assert!(served.len() >= 50, "only {} DMs produced", served.len());

    // Every DM the emulator served reaches the CRM, through exactly one event. (Events the
    // killed host had claimed for delivery are delivered by the survivor once their claim
    // lapses, 30 s.)
    let started = Instant::now();
    eventually_within(
        Duration::from_secs(120),
        "every DM served to reach the CRM",
        async || {
            let received = crm.messages(|m| m.external_id.clone());
            served.iter().all(|id| received.contains_key(id))
        },
    )
    .await;
    eprintln!(
        "all {} DMs at the CRM {:.1} s after the producer stopped",
        served.len(),
        started.elapsed().as_secs_f64()
    );
    let mut survivor = survivor;
    survivor.child.kill().unwrap();
    survivor.child.wait().unwrap();

    let received = crm.messages(|m| m.external_id.clone());
    let missing: Vec<&String> = served
        .iter()
        .filter(|id| !received.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "DMs never reached the CRM: {missing:?}");
    let doubled: Vec<(&String, usize)> = received
        .iter()
        .filter(|(_, events)| events.len() > 1)
        .map(|(id, events)| (id, events.len()))
        .collect();
    assert!(
        doubled.is_empty(),
        "DMs reported by several events: {doubled:?}"
    );
    assert_eq!(received.len(), served.len(), "nothing but the served DMs");
    assert_eq!(
        store.message_count("default").await.unwrap(),
        i64::try_from(served.len()).unwrap()
    );

    // One host polled at a time: about one DM request per poll interval over the run, not
    // two (both hosts polling would double it).
    let expected = run.as_secs_f64() / POLL_SECS as f64;
    eprintln!(
        "{polls} DM polls in {:.1} s of run (one host polling: about {expected:.0})",
        run.as_secs_f64()
    );
    assert!(
        (polls as f64) < expected * 1.5 + 3.0,
        "{polls} DM polls in {run:?}: more than one host polled"
    );
}
