//! Reading ahead: a group of deliveries of messages alone keeps the store's connection busy
//! while routing decides.
//!
//! Written one after another, each delivery of a group holds SQLite's one connection
//! through its reads, its routing and its writes, so the connection waits while routing
//! runs the policies (about a tenth of a delivery's time under the lock, `BENCHMARKS.md`
//! §2). Here the group's transaction belongs to a task of its own ([`serve`]) that runs the
//! store's jobs in the order they are sent, and the host sends them so that routing always
//! has the connection's work beside it:
//!
//! ```text
//! connection:  read 1 | read 2 | write 1 | read 3 | write 2 | … | commit
//! routing:             route 1 | route 2          | route 3 …
//! ```
//!
//! A delivery's reads go ahead of the previous delivery's writes only when the two share
//! nothing those writes could change for them ([`Footprint`]): no message (an account's
//! platform id), no thread and no author of the same connector. Otherwise they wait for
//! those writes, as when every delivery was written in turn, so a redelivery is still a
//! duplicate and a second message on a thread still joins the conversation the first one
//! opened. The stored state routing reads for a conversation opened before a restart is
//! read when routing needs it, after every write sent before.
//!
//! **Reads beside the writer.** On a SQLite file, a delivery that shares nothing with any
//! delivery taken into the group before it is read on the store's reading connection
//! ([`Store::read_beside`]), on what is committed, while the group's connection writes:
//! no write of the open group can change what it reads. One that meets an earlier
//! delivery, not only the one before it, is read on the group's connection as above.
//!
//! [`Store::read_beside`]: crate::store::Store::read_beside
//!
//! **Writes built beside the connection.** A delivery's writes (its conversations,
//! messages, customers, events and files, with the routing outcome) are built and bound
//! here, once routing has decided, and sent as statements to run
//! ([`ReadDelivery::record`], `store/sink.rs`): the connection runs one delivery's while
//! the next is routed and built, instead of waiting while each statement is built. Only a
//! delivery whose writes may read the database is built by [`serve`] as it runs: one whose
//! messages carry an author's e-mail address or phone number (new to the store, it is
//! matched against other customers).
//!
//! Each delivery is written in a savepoint of the group's transaction; one whose writes
//! fail is rolled back alone and told to retry, and the routing of every failed delivery
//! is undone after the commit, as in a group written in turn (see the parent module).
//! Deliveries that also carry receipts, deletions or edits are written at once when read,
//! so they are written in turn (the parent module), in groups of their own.
//!
//! **Late arrivals join.** Deliveries of messages alone that the plugin queues while a
//! group is being written join it until it has [`MAX_GROUP`]: they are written at once,
//! in the same commit, instead of waiting for this one and then for a commit of their
//! own. With 4 deliveries in flight that makes 3.6–3.9 deliveries per commit instead of
//! 1.9–2.0 (`BENCHMARKS.md` §2); the first caller of a group waits for at most
//! [`MAX_GROUP`] deliveries' writes, as before.
//!
//! One thing is read ahead that a delivery does not name: its returning authors' last
//! helpers are their customers' records, and two identities filed under one customer (on
//! one channel or two) are different authors here. Such a customer writing from both in
//! two deliveries of one group is routed, for the second, on the helper known before the
//! first: as two of their messages in one delivery already were.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::connectors::Connector;
use crate::crm::CrmEvent;
use crate::store::{
    ConversationStatus, DeliveryGroup, Ingested, ReadDelivery, Recorded, RoutedConversation,
};
use crate::types::{Message, WebhookResponse};

use super::super::HostInner;
use super::super::routing::{AutoAnswer, Decided, TenantRouting};
use super::{Answer, DeliveryQueue, MAX_GROUP, Queued, Touched, Written, refuse_all};

/// A delivery as its reads found it.
type Read = (ReadDelivery, Vec<Ingested>);

/// What the task owning a group's transaction is asked to do.
enum Job {
    Read {
        tenant: String,
        channel: String,
        messages: Vec<Message>,
        reply: oneshot::Sender<anyhow::Result<Read>>,
    },
    Stored {
        tenant: String,
        ids: Vec<String>,
        reply: oneshot::Sender<anyhow::Result<Vec<RoutedConversation>>>,
    },
    Write {
        read: Box<ReadDelivery>,
        changes: Vec<(String, ConversationStatus, Option<String>)>,
        events: Vec<CrmEvent>,
        reply: oneshot::Sender<anyhow::Result<()>>,
    },
    /// The writes of a delivery, built on the host's side.
    Run {
        recorded: anyhow::Result<Recorded>,
        reply: oneshot::Sender<anyhow::Result<()>>,
    },
    Commit {
        reply: oneshot::Sender<anyhow::Result<()>>,
    },
}

/// Runs a group's jobs on its transaction one after another, in the order they were sent:
/// the store sees reads and writes in the order the host asked for them. Ended without
/// a commit (the host gave up on the group), the transaction rolls back.
async fn serve(mut group: DeliveryGroup, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = jobs.recv().await {
        // A reply nobody waits for any more is dropped: the host answers for its delivery.
        match job {
            Job::Read {
                tenant,
                channel,
                messages,
                reply,
            } => {
                let _ = reply.send(group.read(&tenant, &channel, messages).await);
            }
            Job::Stored { tenant, ids, reply } => {
                let _ = reply.send(group.routed_conversations(&tenant, &ids).await);
            }
            Job::Write {
                read,
                changes,
                events,
                reply,
            } => {
                let _ = reply.send(group.write(*read, &changes, &events).await);
            }
            Job::Run { recorded, reply } => {
                let _ = reply.send(match recorded {
                    Ok(recorded) => group.run(recorded).await,
                    Err(e) => Err(e),
                });
            }
            Job::Commit { reply } => {
                let _ = reply.send(group.commit().await);
                return;
            }
        }
    }
}

/// The host's end of a group's transaction: jobs go to [`serve`], and each job's answer
/// comes back when the store gets to it.
struct Connection(mpsc::UnboundedSender<Job>);

/// The answer to one job, to wait for when it is needed.
struct Reply<T>(oneshot::Receiver<anyhow::Result<T>>);

impl Connection {
    fn ask<T>(&self, job: impl FnOnce(oneshot::Sender<anyhow::Result<T>>) -> Job) -> Reply<T> {
        let (reply, answer) = oneshot::channel();
        // Should the task be gone, the job is dropped with its sender and the reply says so.
        let _ = self.0.send(job(reply));
        Reply(answer)
    }

    fn read(&self, c: &Connector, messages: Vec<Message>) -> Reply<Read> {
        self.ask(|reply| Job::Read {
            tenant: c.tenant.clone(),
            channel: c.name.clone(),
            messages,
            reply,
        })
    }
}

impl<T> Reply<T> {
    async fn get(self) -> anyhow::Result<T> {
        self.0.await.unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "the store's task reading or writing the delivery stopped before answering"
            ))
        })
    }
}

/// What a delivery's reads look up that another delivery's writes could change: its
/// messages (account and platform id), threads and authors, each with its connector,
/// hashed. Two deliveries whose footprints do not meet may be read in either order
/// around each other's writes; a collision of hashes only makes them wait.
#[derive(Default)]
struct Footprint(HashSet<u64>);

impl Footprint {
    /// Adds what `other` names.
    fn add(&mut self, other: &Footprint) {
        self.0.extend(other.0.iter().copied());
    }

    fn of(connector: &str, messages: &[Message]) -> Self {
        let key = |part: u8, a: &str, b: &str| {
            let mut h = DefaultHasher::new();
            (connector, part, a, b).hash(&mut h);
            h.finish()
        };
        let mut keys = HashSet::with_capacity(messages.len() * 3);
        for m in messages {
            keys.insert(key(0, &m.account, &m.external_id));
            keys.insert(key(1, &m.conversation_key, ""));
            keys.insert(key(2, &m.author.id, ""));
        }
        Footprint(keys)
    }

    fn meets(&self, other: &Footprint) -> bool {
        let (small, large) = if self.0.len() <= other.0.len() {
            (self, other)
        } else {
            (other, self)
        };
        small.0.iter().any(|k| large.0.contains(k))
    }
}

/// A delivery routed and sent to be written, waiting for the store's answer.
struct Sent {
    delivery: Answerable,
    ingested: Vec<Ingested>,
    answers: Vec<AutoAnswer>,
    touched: Touched,
    written: Reply<()>,
}

/// What answering a delivery of the group takes.
struct Answerable {
    connector: Arc<Connector>,
    response: WebhookResponse,
    answer: oneshot::Sender<Answer>,
}

/// A delivery of the group whose reads are not sent yet.
struct Waiting {
    delivery: Answerable,
    footprint: Footprint,
    /// Taken when its reads are sent.
    messages: Vec<Message>,
}

impl Waiting {
    fn new(queued: Queued) -> Self {
        let footprint = Footprint::of(&queued.connector.name, queued.normalised.messages());
        let (response, messages) = queued.normalised.into_messages();
        Waiting {
            delivery: Answerable {
                connector: queued.connector,
                response,
                answer: queued.answer,
            },
            footprint,
            messages,
        }
    }

    fn read(&mut self, connection: &Connection) -> Reply<Read> {
        connection.read(&self.delivery.connector, std::mem::take(&mut self.messages))
    }
}

impl HostInner {
    /// Writes a group of deliveries of messages alone, reading each ahead of the writes of
    /// the one before (see the module docs), and commits them together. Deliveries of
    /// messages alone that the plugin queues meanwhile join the group while it is open
    /// (up to [`MAX_GROUP`] in all): they are written now rather than after this commit.
    pub(super) async fn write_ahead(
        &self,
        routing: &mut TenantRouting,
        queue: &DeliveryQueue,
        group: Vec<Queued>,
    ) {
        let tx = match self.store.begin_group().await {
            Ok(tx) => tx,
            Err(e) => return refuse_all(group, &e),
        };
        let (jobs, serving) = mpsc::unbounded_channel();
        tokio::spawn(serve(tx, serving));
        let connection = Connection(jobs);

        let beside = self.store.reads_beside();
        // What the group's deliveries taken so far name: a delivery that meets none of
        // them is read beside the writer, on what is committed.
        let mut before = Footprint::default();
        let mut taken = group.len();
        let mut waiting: VecDeque<Waiting> = group.into_iter().map(Waiting::new).collect();
        let mut sent: Vec<Sent> = Vec::with_capacity(waiting.len());
        let mut undo: Vec<(Arc<Connector>, Touched)> = Vec::new();
        // The reads of `waiting`'s first delivery, when sent ahead of the writes before it.
        let mut ahead: Option<Reply<Read>> = None;
        while let Some(mut next) = waiting.pop_front() {
            let reply = match ahead.take() {
                Some(reply) => reply,
                None if beside && !before.meets(&next.footprint) => self.read_beside(&mut next),
                // After every write sent before.
                None => next.read(&connection),
            };
            let Waiting {
                delivery,
                footprint,
                ..
            } = next;
            before.add(&footprint);
            let c = delivery.connector.clone();
            let (read, ingested) = match reply.get().await {
                Ok(read) => read,
                Err(e) => {
                    let _ = delivery.answer.send((c.not_stored(&e), Vec::new()));
                    continue;
                }
            };
            if waiting.is_empty() && taken < MAX_GROUP {
                let late = queue.take_alone(MAX_GROUP - taken);
                taken += late.len();
                waiting.extend(late.into_iter().map(Waiting::new));
            }
            if let Some(following) = waiting.front_mut() {
                if beside && !before.meets(&following.footprint) {
                    ahead = Some(self.read_beside(following));
                } else if !following.footprint.meets(&footprint) {
                    ahead = Some(following.read(&connection));
                }
            }
            let mut touched = Vec::new();
            match self
                .decide_ahead(routing, &connection, &c, &read, &ingested, &mut touched)
                .await
            {
                Ok((changes, events, answers)) => {
                    // Built here, while the connection runs the writes before.
                    let written = if read.recordable() {
                        let recorded = read.record(&changes, &events).await;
                        connection.ask(|reply| Job::Run { recorded, reply })
                    } else {
                        connection.ask(|reply| Job::Write {
                            read: Box::new(read),
                            changes,
                            events,
                            reply,
                        })
                    };
                    sent.push(Sent {
                        delivery,
                        ingested,
                        answers,
                        touched,
                        written,
                    });
                }
                Err(e) => {
                    let _ = delivery.answer.send((c.not_stored(&e), Vec::new()));
                    undo.push((c, touched));
                }
            }
        }
        let committed = connection.ask(|reply| Job::Commit { reply });
        let mut written = Vec::with_capacity(sent.len());
        for s in sent {
            let Answerable {
                connector,
                response,
                answer,
            } = s.delivery;
            match s.written.get().await {
                Ok(()) => written.push(Written {
                    connector,
                    answer,
                    response,
                    ingested: s.ingested,
                    answers: s.answers,
                    touched: s.touched,
                }),
                Err(e) => {
                    let _ = answer.send((connector.not_stored(&e), Vec::new()));
                    undo.push((connector, s.touched));
                }
            }
        }
        let committed = committed.get().await;
        self.settle(routing, written, undo, committed).await;
    }

    /// Sends `waiting`'s reads to the store's reading connection ([`Store::read_beside`]),
    /// which runs them while the group's connection writes.
    ///
    /// [`Store::read_beside`]: crate::store::Store::read_beside
    fn read_beside(&self, waiting: &mut Waiting) -> Reply<Read> {
        let (reply, answer) = oneshot::channel();
        let store = self.store.clone();
        let (tenant, channel) = (
            waiting.delivery.connector.tenant.clone(),
            waiting.delivery.connector.name.clone(),
        );
        let messages = std::mem::take(&mut waiting.messages);
        tokio::spawn(async move {
            let _ = reply.send(store.read_beside(&tenant, &channel, messages).await);
        });
        Reply(answer)
    }

    /// Routes a delivery read ahead: nothing when every message was a duplicate; the
    /// stored state of conversations the engine has not seen is read first.
    async fn decide_ahead(
        &self,
        routing: &mut TenantRouting,
        connection: &Connection,
        c: &Connector,
        read: &ReadDelivery,
        ingested: &[Ingested],
        touched: &mut Touched,
    ) -> anyhow::Result<Decided> {
        if ingested.iter().all(|i| i.duplicate) {
            return Ok((Vec::new(), Vec::new(), Vec::new()));
        }
        let unseen = routing.unseen(ingested);
        let stored = if unseen.is_empty() {
            Vec::new()
        } else {
            connection
                .ask(|reply| Job::Stored {
                    tenant: c.tenant.clone(),
                    ids: unseen,
                    reply,
                })
                .get()
                .await?
        };
        routing
            .decide(
                &c.tenant,
                c,
                ingested,
                stored,
                read.helpers(),
                &self.metrics,
                &self.brands(&c.tenant),
                touched,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::Footprint;
    use crate::types::{Message, MessageKind, Person};

    fn message(id: &str, thread: &str, author: &str) -> Message {
        Message {
            external_id: id.to_string(),
            account: "5001".to_string(),
            conversation_key: thread.to_string(),
            author: Person {
                id: author.to_string(),
                handle: None,
                display_name: None,
            },
            text: "ciao".to_string(),
            kind: MessageKind::PrivateMessage,
            in_reply_to: None,
            attachments: Vec::new(),
            created_at: 0,
            extra: Vec::new(),
        }
    }

    #[test]
    fn footprints_meet_on_a_shared_message_thread_or_author_of_one_connector() {
        let first = Footprint::of("facebook", &[message("m1", "t1", "a1")]);
        let meets = |other: Message| first.meets(&Footprint::of("facebook", &[other]));
        assert!(meets(message("m1", "t9", "a9")), "the same message");
        assert!(meets(message("m9", "t1", "a9")), "the same thread");
        assert!(meets(message("m9", "t9", "a1")), "the same author");
        assert!(!meets(message("m9", "t9", "a9")), "nothing shared");
        // A key of one kind is not another kind's: a thread named like an author.
        assert!(!meets(message("m9", "a1", "t1")));
        // Another connector's ids are other things.
        let elsewhere = Footprint::of("twitter", &[message("m1", "t1", "a1")]);
        assert!(!first.meets(&elsewhere));
        // Either way round, whichever is larger.
        let many = Footprint::of(
            "facebook",
            &[message("m5", "t5", "a5"), message("m6", "t6", "a1")],
        );
        assert!(first.meets(&many) && many.meets(&first));
    }
}
