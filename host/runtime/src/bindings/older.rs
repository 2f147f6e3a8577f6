//! What every older contract line has in common with the latest, written once: the host
//! functions its plugins import and the connector's own records. Each older line's module
//! invokes these macros (`v0_1.rs`, `v0_2.rs`).

/// The host functions an older line's plugins import (`log`, `clock`, `signing`, `http`:
/// the same functions and types in every line so far), implemented by calling the latest
/// line's; invoked in each older line's module, whose `log`, `clock`, `signing` and
/// `http` it implements.
macro_rules! older_line_imports {
    () => {
        impl clock::Host for PluginState {
            fn now_ms(&mut self) -> u64 {
                latest::clock::Host::now_ms(self)
            }
        }

        impl log::Host for PluginState {
            fn write(&mut self, level: log::Level, message: String) {
                let level = match level {
                    log::Level::Trace => latest::log::Level::Trace,
                    log::Level::Debug => latest::log::Level::Debug,
                    log::Level::Info => latest::log::Level::Info,
                    log::Level::Warn => latest::log::Level::Warn,
                    log::Level::Error => latest::log::Level::Error,
                };
                latest::log::Host::write(self, level, message);
            }
        }

        impl signing::Host for PluginState {
            fn hmac_sha256(
                &mut self,
                secret: String,
                data: Vec<u8>,
            ) -> Result<Vec<u8>, signing::SigningError> {
                latest::signing::Host::hmac_sha256(self, secret, data).map_err(signing_error)
            }

            fn verify_hmac_sha256(
                &mut self,
                secret: String,
                data: Vec<u8>,
                mac: Vec<u8>,
            ) -> Result<bool, signing::SigningError> {
                latest::signing::Host::verify_hmac_sha256(self, secret, data, mac)
                    .map_err(signing_error)
            }

            fn secret_equals(
                &mut self,
                secret: String,
                candidate: String,
            ) -> Result<bool, signing::SigningError> {
                latest::signing::Host::secret_equals(self, secret, candidate).map_err(signing_error)
            }
        }

        fn signing_error(e: latest::signing::SigningError) -> signing::SigningError {
            match e {
                latest::signing::SigningError::Denied(reason) => {
                    signing::SigningError::Denied(reason)
                }
            }
        }

        impl http::Host for PluginState {
            async fn fetch(
                &mut self,
                request: http::Request,
            ) -> Result<http::Response, http::HttpError> {
                let request = latest::http::Request {
                    method: match request.method {
                        http::Method::Get => latest::http::Method::Get,
                        http::Method::Post => latest::http::Method::Post,
                        http::Method::Put => latest::http::Method::Put,
                        http::Method::Patch => latest::http::Method::Patch,
                        http::Method::Delete => latest::http::Method::Delete,
                        http::Method::Head => latest::http::Method::Head,
                    },
                    url: request.url,
                    headers: request.headers,
                    body: request.body,
                    credential: request.credential,
                    timeout_ms: request.timeout_ms,
                };
                match latest::http::Host::fetch(self, request).await {
                    Ok(r) => Ok(http::Response {
                        status: r.status,
                        headers: r.headers,
                        body: r.body,
                    }),
                    Err(e) => Err(match e {
                        latest::http::HttpError::Denied(s) => http::HttpError::Denied(s),
                        latest::http::HttpError::InvalidRequest(s) => {
                            http::HttpError::InvalidRequest(s)
                        }
                        latest::http::HttpError::Timeout => http::HttpError::Timeout,
                        latest::http::HttpError::Connection(s) => http::HttpError::Connection(s),
                        latest::http::HttpError::TooLarge(n) => http::HttpError::TooLarge(n),
                        latest::http::HttpError::RateLimited(ms) => {
                            http::HttpError::RateLimited(ms)
                        }
                    }),
                }
            }
        }
    };
}
pub(crate) use older_line_imports;

/// What an older line's connectors exchange, converted to and from the latest line's
/// types: the connector's own records, the same in every line so far. `$messages`
/// converts the line's list of messages to the latest line's (`std::convert::identity`
/// for a line that shares the latest line's `types`). Invoked in each older line's module,
/// whose `connector` it converts.
macro_rules! older_line_connector {
    ($messages:expr) => {
        impl From<connector::Description> for latest::connector::Description {
            fn from(d: connector::Description) -> Self {
                use latest::connector::Capability as C;
                latest::connector::Description {
                    channel: d.channel,
                    summary: d.summary,
                    capabilities: d
                        .capabilities
                        .into_iter()
                        .map(|c| match c {
                            connector::Capability::PublicReply => C::PublicReply,
                            connector::Capability::PrivateMessage => C::PrivateMessage,
                            connector::Capability::CommentReply => C::CommentReply,
                            connector::Capability::Webhook => C::Webhook,
                            connector::Capability::Polling => C::Polling,
                            connector::Capability::Attachments => C::Attachments,
                        })
                        .collect(),
                    max_text_length: d.max_text_length,
                }
            }
        }

        impl From<latest::connector::Config> for connector::Config {
            fn from(c: latest::connector::Config) -> Self {
                connector::Config {
                    settings: c.settings,
                    accounts: c
                        .accounts
                        .into_iter()
                        .map(|a| connector::Account {
                            id: a.id,
                            handle: a.handle,
                            credential: a.credential,
                            settings: a.settings,
                        })
                        .collect(),
                }
            }
        }

        impl From<connector::PollResult> for latest::connector::PollResult {
            fn from(p: connector::PollResult) -> Self {
                latest::connector::PollResult {
                    messages: $messages(p.messages),
                    cursor: p.cursor,
                    next_poll_after_ms: p.next_poll_after_ms,
                }
            }
        }

        impl From<latest::connector::WebhookRequest> for connector::WebhookRequest {
            fn from(r: latest::connector::WebhookRequest) -> Self {
                connector::WebhookRequest {
                    method: r.method,
                    path: r.path,
                    query: r.query,
                    headers: r.headers,
                    body: r.body,
                }
            }
        }

        impl From<connector::WebhookOutcome> for latest::connector::WebhookOutcome {
            fn from(o: connector::WebhookOutcome) -> Self {
                use latest::connector::DeliveryState as D;
                latest::connector::WebhookOutcome {
                    response: latest::connector::WebhookResponse {
                        status: o.response.status,
                        headers: o.response.headers,
                        body: o.response.body,
                    },
                    messages: $messages(o.messages),
                    receipts: o
                        .receipts
                        .into_iter()
                        .map(|r| latest::connector::Receipt {
                            account: r.account,
                            external_id: r.external_id,
                            state: match r.state {
                                connector::DeliveryState::Delivered => D::Delivered,
                                connector::DeliveryState::Read => D::Read,
                                connector::DeliveryState::Failed => D::Failed,
                            },
                            at: r.at,
                        })
                        .collect(),
                }
            }
        }

        impl From<connector::Sent> for latest::connector::Sent {
            fn from(s: connector::Sent) -> Self {
                latest::connector::Sent {
                    external_id: s.external_id,
                    sent_at: s.sent_at,
                }
            }
        }
    };
}
pub(crate) use older_line_connector;
