//! Every string the console shows, in English and Italian.
//!
//! [`Texts`] is one struct with a field per string and one constant per language, so a
//! string missing in one language is a compile error. The language comes from `?lang=`
//! (remembered in a cookie), else that cookie, else the browser's `Accept-Language`.

use axum::http::{HeaderMap, header};

/// The console's languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    It,
}

/// The cookie that remembers a language chosen with `?lang=`.
pub(crate) const LANG_COOKIE: &str = "centralino_lang";

impl Lang {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::It => "it",
        }
    }

    fn from_code(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("it") {
            Some(Lang::It)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The other language, offered by the switch in every page's header.
    pub(crate) fn other(self) -> Lang {
        match self {
            Lang::En => Lang::It,
            Lang::It => Lang::En,
        }
    }

    pub(crate) fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::It => &IT,
        }
    }

    /// The language of a request: `query` (`?lang=`), the cookie, then `Accept-Language`
    /// by quality; English when nothing matches.
    pub(crate) fn of(headers: &HeaderMap, query: Option<&str>) -> Lang {
        if let Some(lang) = query.and_then(Lang::from_code) {
            return lang;
        }
        if let Some(lang) = super::session::cookie(headers, LANG_COOKIE).and_then(Lang::from_code) {
            return lang;
        }
        let accepted = headers
            .get_all(header::ACCEPT_LANGUAGE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','));
        let mut best: Option<(u16, Lang)> = None;
        for item in accepted {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::from_code) else {
                continue;
            };
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, quality_per_mille);
            if quality > 0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }
}

/// `q=0.8` as 800; anything unreadable as 0 (not acceptable).
fn quality_per_mille(q: &str) -> u16 {
    let q = q.trim();
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
    match (whole, digits.parse::<u16>()) {
        ("1", _) => 1000,
        ("0", Ok(f)) => f,
        _ => 0,
    }
}

/// The console's strings. `{placeholders}` are filled in by the pages.
pub(crate) struct Texts {
    pub(crate) html_lang: &'static str,
    pub(crate) language_name: &'static str,
    pub(crate) language_label: &'static str,
    pub(crate) title: &'static str,
    pub(crate) nav_overview: &'static str,
    pub(crate) nav_connectors: &'static str,
    pub(crate) nav_audit: &'static str,
    pub(crate) logout: &'static str,
    pub(crate) signed_in_as: &'static str,

    pub(crate) login_title: &'static str,
    pub(crate) login_token_label: &'static str,
    pub(crate) login_token_help: &'static str,
    pub(crate) login_button: &'static str,
    pub(crate) login_no_token: &'static str,
    pub(crate) login_enter: &'static str,
    pub(crate) login_wrong_token: &'static str,
    pub(crate) login_expired: &'static str,
    pub(crate) sessions_in_memory: &'static str,

    pub(crate) overview_title: &'static str,
    pub(crate) live_on: &'static str,
    pub(crate) live_off: &'static str,
    pub(crate) updated_at: &'static str,
    pub(crate) ready: &'static str,
    pub(crate) not_ready: &'static str,
    pub(crate) waiting: &'static str,
    pub(crate) longest_wait: &'static str,
    pub(crate) connectors_unhealthy: &'static str,
    pub(crate) outbox_backlog: &'static str,
    pub(crate) tasks_down: &'static str,
    pub(crate) by_brand: &'static str,
    pub(crate) tenant: &'static str,
    pub(crate) brand: &'static str,
    pub(crate) no_brand: &'static str,
    pub(crate) no_routing: &'static str,
    pub(crate) waiting_customers: &'static str,
    pub(crate) customer: &'static str,
    pub(crate) channel: &'static str,
    pub(crate) message: &'static str,
    pub(crate) waited: &'static str,
    pub(crate) estimate: &'static str,
    pub(crate) estimate_about: &'static str,
    pub(crate) estimate_no_history: &'static str,
    pub(crate) estimate_nobody: &'static str,
    pub(crate) nobody_waiting: &'static str,
    pub(crate) all_connectors_healthy: &'static str,
    pub(crate) outbox_title: &'static str,
    pub(crate) pending: &'static str,
    pub(crate) due: &'static str,
    pub(crate) sending: &'static str,
    pub(crate) oldest_pending: &'static str,
    pub(crate) outbox_empty: &'static str,
    pub(crate) tasks_title: &'static str,
    pub(crate) all_tasks_running: &'static str,
    pub(crate) restarts: &'static str,
    pub(crate) down_since: &'static str,
    pub(crate) last_panic: &'static str,

    pub(crate) first_response_title: &'static str,
    pub(crate) first_response_none: &'static str,
    pub(crate) first_response_caption: &'static str,
    pub(crate) messages_title: &'static str,
    pub(crate) messages_none: &'static str,
    pub(crate) messages_in: &'static str,
    pub(crate) messages_out: &'static str,
    pub(crate) hour: &'static str,
    pub(crate) first_responses: &'static str,
    pub(crate) chart_values: &'static str,

    pub(crate) connectors_title: &'static str,
    pub(crate) connector: &'static str,
    pub(crate) plugin: &'static str,
    pub(crate) state: &'static str,
    pub(crate) enabled: &'static str,
    pub(crate) disabled: &'static str,
    pub(crate) circuit: &'static str,
    pub(crate) circuit_closed: &'static str,
    pub(crate) circuit_backing_off: &'static str,
    pub(crate) circuit_open: &'static str,
    pub(crate) faults: &'static str,
    pub(crate) last_fault: &'static str,
    pub(crate) loaded_at: &'static str,
    pub(crate) actions: &'static str,
    pub(crate) enable: &'static str,
    pub(crate) disable: &'static str,
    pub(crate) reset: &'static str,
    pub(crate) reload: &'static str,
    pub(crate) no_connectors: &'static str,
    pub(crate) none: &'static str,

    pub(crate) upload_title: &'static str,
    pub(crate) upload_note: &'static str,
    pub(crate) upload_file: &'static str,
    pub(crate) upload_button: &'static str,
    pub(crate) upload: &'static str,
    pub(crate) review_title: &'static str,
    pub(crate) running_now: &'static str,
    pub(crate) world: &'static str,
    pub(crate) contract: &'static str,
    pub(crate) contract_served: &'static str,
    pub(crate) contract_not_served: &'static str,
    pub(crate) capabilities: &'static str,
    pub(crate) imports: &'static str,
    pub(crate) size: &'static str,
    pub(crate) review_note: &'static str,
    pub(crate) confirm_swap: &'static str,
    pub(crate) cancel: &'static str,
    pub(crate) upload_cancelled: &'static str,
    pub(crate) rollback: &'static str,
    pub(crate) rollback_to: &'static str,
    pub(crate) grants: &'static str,
    pub(crate) grants_none: &'static str,
    pub(crate) hosts: &'static str,
    pub(crate) credentials: &'static str,
    pub(crate) secrets: &'static str,

    pub(crate) audit_title: &'static str,
    pub(crate) audit_note: &'static str,
    pub(crate) audit_empty: &'static str,
    pub(crate) when: &'static str,
    pub(crate) who: &'static str,
    pub(crate) what: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) who_admin: &'static str,
    pub(crate) who_loopback: &'static str,
    pub(crate) session: &'static str,
    pub(crate) who_user: &'static str,
    pub(crate) login_user_title: &'static str,
    pub(crate) login_username: &'static str,
    pub(crate) login_password: &'static str,
    pub(crate) login_user_button: &'static str,
    pub(crate) login_wrong_password: &'static str,
    pub(crate) login_admin_title: &'static str,
    pub(crate) admin_only: &'static str,
    pub(crate) outcome_done: &'static str,
    pub(crate) outcome_refused: &'static str,

    pub(crate) nav_operators: &'static str,
    pub(crate) nav_routing: &'static str,
    pub(crate) operators_title: &'static str,
    pub(crate) no_operators: &'static str,
    pub(crate) operator: &'static str,
    pub(crate) presence: &'static str,
    pub(crate) load: &'static str,
    pub(crate) skills: &'static str,
    pub(crate) languages: &'static str,
    pub(crate) accounts: &'static str,
    pub(crate) holds: &'static str,
    pub(crate) holds_none: &'static str,
    pub(crate) answered: &'static str,
    pub(crate) off_shift: &'static str,
    pub(crate) presence_online: &'static str,
    pub(crate) presence_away: &'static str,
    pub(crate) presence_offline: &'static str,
    pub(crate) set_presence: &'static str,

    pub(crate) routing_title: &'static str,
    pub(crate) no_routing_here: &'static str,
    pub(crate) live_chain: &'static str,
    pub(crate) shadow_chain: &'static str,
    pub(crate) no_shadow: &'static str,
    pub(crate) decisions: &'static str,
    pub(crate) assignments: &'static str,
    pub(crate) queued: &'static str,
    pub(crate) stage_failures: &'static str,
    pub(crate) disagreements: &'static str,
    pub(crate) decisions_compared: &'static str,
    pub(crate) last_disagreements: &'static str,
    pub(crate) conversation: &'static str,
    pub(crate) outcome_queue: &'static str,
    pub(crate) replay_title: &'static str,
    pub(crate) replay_note: &'static str,
    pub(crate) candidate_chain: &'static str,
    pub(crate) period: &'static str,
    pub(crate) sla_minutes: &'static str,
    pub(crate) replay_button: &'static str,
    pub(crate) replay: &'static str,
    pub(crate) period_last_hour: &'static str,
    pub(crate) period_last_hours: &'static str,
    pub(crate) period_last_days: &'static str,
    pub(crate) replay_result: &'static str,
    pub(crate) replay_what: &'static str,
    pub(crate) replay_truncated: &'static str,
    pub(crate) live_not_replayed: &'static str,
    pub(crate) conversations: &'static str,
    pub(crate) assigned_to: &'static str,
    pub(crate) never_assigned: &'static str,
    pub(crate) wait_p50_p95_max: &'static str,
    pub(crate) sla_missed: &'static str,
    pub(crate) queue_peak: &'static str,
    pub(crate) measure: &'static str,
    pub(crate) switch_note: &'static str,
    pub(crate) switch_button: &'static str,
    pub(crate) switch_chain: &'static str,

    pub(crate) refused_title: &'static str,
    pub(crate) refused_csrf: &'static str,
    pub(crate) refused_loopback: &'static str,
    pub(crate) refused_origin: &'static str,
    pub(crate) back_to_console: &'static str,
}

pub(crate) const EN: Texts = Texts {
    html_lang: "en",
    language_name: "English",
    language_label: "Language",
    title: "centralino console",
    nav_overview: "Overview",
    nav_connectors: "Connectors",
    nav_audit: "Audit log",
    logout: "Log out",
    signed_in_as: "Signed in as",

    login_title: "Log in",
    login_token_label: "Admin token",
    login_token_help: "The admin API's bearer token (host.admin_token in centralino.toml).",
    login_button: "Log in",
    login_no_token: "This host has no admin token: like the admin API, the console is open \
                     only to clients on this machine (loopback).",
    login_enter: "Enter",
    login_wrong_token: "That is not the admin token.",
    login_expired: "The login form expired. Try again.",
    sessions_in_memory: "Sessions are kept in the store: a restart logs nobody out.",

    overview_title: "Overview",
    live_on: "Live",
    live_off: "Reconnecting…",
    updated_at: "Updated",
    ready: "Ready",
    not_ready: "Not ready",
    waiting: "Waiting",
    longest_wait: "Longest wait",
    connectors_unhealthy: "Connectors unhealthy",
    outbox_backlog: "Replies in the outbox",
    tasks_down: "Background tasks down",
    by_brand: "Waiting by brand",
    tenant: "Tenant",
    brand: "Brand",
    no_brand: "(no brand)",
    no_routing: "no routing",
    waiting_customers: "Waiting customers",
    customer: "Customer",
    channel: "Channel",
    message: "Message",
    waited: "Waiting for",
    estimate: "Estimate",
    estimate_about: "position {position}, about {minutes} min",
    estimate_no_history: "position {position}, no recent history for a figure",
    estimate_nobody: "position {position}, nobody at work",
    nobody_waiting: "Nobody is waiting.",
    all_connectors_healthy: "Every connector is healthy.",
    outbox_title: "Outbox",
    pending: "Pending",
    due: "Due now",
    sending: "Sending",
    oldest_pending: "Oldest pending",
    outbox_empty: "No replies are waiting to go out.",
    tasks_title: "Background tasks",
    all_tasks_running: "Every background task is running.",
    restarts: "Restarts",
    down_since: "Down since",
    last_panic: "Last panic",

    first_response_title: "First response, last 12 hours",
    first_response_none: "No first responses in the last 12 hours.",
    first_response_caption: "time from a customer's first message to the first reply, per hour \
                             (UTC) in which the reply went out",
    messages_title: "Messages, last 12 hours",
    messages_none: "No messages in the last 12 hours.",
    messages_in: "In (customers)",
    messages_out: "Out (replies)",
    hour: "Hour",
    first_responses: "First responses",
    chart_values: "The chart's values",

    connectors_title: "Connectors",
    connector: "Connector",
    plugin: "Plugin",
    state: "State",
    enabled: "Enabled",
    disabled: "Disabled",
    circuit: "Circuit",
    circuit_closed: "closed: calls go through",
    circuit_backing_off: "backing off after faults",
    circuit_open: "open: calls refused until reset",
    faults: "Faults",
    last_fault: "Last fault",
    loaded_at: "Loaded",
    actions: "Actions",
    enable: "Enable",
    disable: "Disable",
    reset: "Reset circuit",
    reload: "Reload plugin",
    no_connectors: "This host has no connectors.",
    none: "none",

    upload_title: "Upload a new plugin version",
    upload_note: "The file is inspected first (nothing is compiled); you confirm before it \
                  is swapped in as `connectors reload` does. The running version is kept: one \
                  click rolls back.",
    upload_file: "Plugin file (.wasm)",
    upload_button: "Upload and inspect",
    upload: "Upload plugin",
    review_title: "New version for {connector}: confirm?",
    running_now: "running now:",
    world: "World",
    contract: "Contract",
    contract_served: "served by this host",
    contract_not_served: "NOT served by this host",
    capabilities: "Capabilities",
    imports: "Imports",
    size: "Size",
    review_note: "Nothing has been compiled yet. Confirming compiles, checks and configures it \
                  beside the running version, then new calls go to it; if any step fails the \
                  running version keeps serving.",
    confirm_swap: "Confirm and swap",
    cancel: "Cancel",
    upload_cancelled: "Upload cancelled: nothing changed.",
    rollback: "Roll back",
    rollback_to: "Roll back to {plugin}",
    grants: "Grants",
    grants_none: "none",
    hosts: "hosts",
    credentials: "credentials",
    secrets: "secrets",

    audit_title: "Audit log",
    audit_note: "Kept in the store: the last 1000 changes made through the console.",
    audit_empty: "No changes yet.",
    when: "When",
    who: "Who",
    what: "What",
    outcome: "Outcome",
    who_admin: "admin (token)",
    who_loopback: "loopback client (no token)",
    session: "session",
    who_user: "{user} (console user of {tenant})",
    login_user_title: "Console user",
    login_username: "Username",
    login_password: "Password",
    login_user_button: "Log in as user",
    login_wrong_password: "Unknown username or wrong password.",
    login_admin_title: "Admin token",
    admin_only: "only the admin (token) may do this: it changes files on the host",
    outcome_done: "done",
    outcome_refused: "refused",

    nav_operators: "Operators",
    nav_routing: "Routing",
    operators_title: "Operators",
    no_operators: "No operators: this host has no routing, or its roster is empty.",
    operator: "Operator",
    presence: "Presence",
    load: "Load",
    skills: "Skills",
    languages: "languages",
    accounts: "Accounts",
    holds: "Holding",
    holds_none: "nothing",
    answered: "answered",
    off_shift: "(outside working hours)",
    presence_online: "Online",
    presence_away: "Away",
    presence_offline: "Offline",
    set_presence: "Set presence",

    routing_title: "Routing",
    no_routing_here: "This host has no routing.",
    live_chain: "Live chain",
    shadow_chain: "Shadow chain",
    no_shadow: "none",
    decisions: "Decisions",
    assignments: "assignments",
    queued: "queued",
    stage_failures: "Stage failures",
    disagreements: "Disagreements",
    decisions_compared: "decisions compared",
    last_disagreements: "Last disagreements",
    conversation: "Conversation",
    outcome_queue: "to the queue",
    replay_title: "Replay a candidate chain",
    replay_note: "The conversations the store holds for the period go through the candidate \
                  chain and the live one on simulated time: today's operators, all online; \
                  each reply and resolution as long after the assignment as it took. Nothing \
                  live changes.",
    candidate_chain: "Candidate chain",
    period: "Period",
    sla_minutes: "First-response SLA (minutes)",
    replay_button: "Replay",
    replay: "Replay",
    period_last_hour: "last hour",
    period_last_hours: "last {hours} hours",
    period_last_days: "last {days} days",
    replay_result: "Replay result",
    replay_what: "{period} ({from} to {to}): {conversations} conversations, {messages} \
                  customer messages.",
    replay_truncated: "The period holds more conversations than one replay reads: only the \
                       latest 20000 were replayed.",
    live_not_replayed: "The live chain could not be replayed",
    conversations: "Conversations",
    assigned_to: "Assigned to {operator}",
    never_assigned: "Never assigned",
    wait_p50_p95_max: "Wait p50 / p95 / max",
    sla_missed: "First responses later than {minutes} min",
    queue_peak: "Queue peak",
    measure: "Measure",
    switch_note: "Switching loads and configures every stage first, as a config reload \
                  does; the shadow chain, operators and conversations stay. A later reload \
                  of centralino.toml applies the chain written there.",
    switch_button: "Switch to the candidate chain",
    switch_chain: "Switch chain",

    refused_title: "Request refused",
    refused_csrf: "This request carries no valid CSRF token, so nothing was changed. Reload \
                   the page and try again.",
    refused_loopback: "This host has no admin token, so the console answers only clients on \
                       this machine (loopback).",
    refused_origin: "This request came from another site, so nothing was changed.",
    back_to_console: "Back to the console",
};

pub(crate) const IT: Texts = Texts {
    html_lang: "it",
    language_name: "Italiano",
    language_label: "Lingua",
    title: "console di centralino",
    nav_overview: "Panoramica",
    nav_connectors: "Connettori",
    nav_audit: "Registro modifiche",
    logout: "Esci",
    signed_in_as: "Accesso come",

    login_title: "Accedi",
    login_token_label: "Token di amministrazione",
    login_token_help: "Il bearer token dell'API di amministrazione (host.admin_token in \
                       centralino.toml).",
    login_button: "Accedi",
    login_no_token: "Questo host non ha un token di amministrazione: come l'API di \
                     amministrazione, la console è aperta solo ai client su questa macchina \
                     (loopback).",
    login_enter: "Entra",
    login_wrong_token: "Questo non è il token di amministrazione.",
    login_expired: "Il modulo di accesso è scaduto. Riprova.",
    sessions_in_memory: "Le sessioni sono salvate nello store: un riavvio non disconnette nessuno.",

    overview_title: "Panoramica",
    live_on: "In diretta",
    live_off: "Riconnessione…",
    updated_at: "Aggiornato",
    ready: "Pronto",
    not_ready: "Non pronto",
    waiting: "In attesa",
    longest_wait: "Attesa più lunga",
    connectors_unhealthy: "Connettori con problemi",
    outbox_backlog: "Risposte in uscita",
    tasks_down: "Attività di fondo ferme",
    by_brand: "In attesa per marchio",
    tenant: "Tenant",
    brand: "Marchio",
    no_brand: "(nessun marchio)",
    no_routing: "nessun instradamento",
    waiting_customers: "Clienti in attesa",
    customer: "Cliente",
    channel: "Canale",
    message: "Messaggio",
    waited: "Attende da",
    estimate: "Stima",
    estimate_about: "posizione {position}, circa {minutes} min",
    estimate_no_history: "posizione {position}, nessuno storico recente per una stima",
    estimate_nobody: "posizione {position}, nessun operatore al lavoro",
    nobody_waiting: "Nessuno è in attesa.",
    all_connectors_healthy: "Tutti i connettori funzionano.",
    outbox_title: "Risposte in uscita",
    pending: "Da inviare",
    due: "Da inviare ora",
    sending: "In invio",
    oldest_pending: "La più vecchia",
    outbox_empty: "Nessuna risposta in attesa di essere inviata.",
    tasks_title: "Attività di fondo",
    all_tasks_running: "Tutte le attività di fondo sono in esecuzione.",
    restarts: "Riavvii",
    down_since: "Ferma da",
    last_panic: "Ultimo panic",

    first_response_title: "Prima risposta, ultime 12 ore",
    first_response_none: "Nessuna prima risposta nelle ultime 12 ore.",
    first_response_caption: "tempo dal primo messaggio del cliente alla prima risposta, per \
                             ora (UTC) in cui è partita la risposta",
    messages_title: "Messaggi, ultime 12 ore",
    messages_none: "Nessun messaggio nelle ultime 12 ore.",
    messages_in: "In arrivo (clienti)",
    messages_out: "In uscita (risposte)",
    hour: "Ora",
    first_responses: "Prime risposte",
    chart_values: "I valori del grafico",

    connectors_title: "Connettori",
    connector: "Connettore",
    plugin: "Plugin",
    state: "Stato",
    enabled: "Abilitato",
    disabled: "Disabilitato",
    circuit: "Circuito",
    circuit_closed: "chiuso: le chiamate passano",
    circuit_backing_off: "in pausa dopo errori",
    circuit_open: "aperto: chiamate rifiutate fino al ripristino",
    faults: "Errori",
    last_fault: "Ultimo errore",
    loaded_at: "Caricato",
    actions: "Azioni",
    enable: "Abilita",
    disable: "Disabilita",
    reset: "Ripristina circuito",
    reload: "Ricarica plugin",
    no_connectors: "Questo host non ha connettori.",
    none: "nessuno",

    upload_title: "Carica una nuova versione del plugin",
    upload_note: "Il file viene prima ispezionato (nulla è compilato); confermi prima che \
                  venga sostituito come fa `connectors reload`. La versione in uso è \
                  conservata: un clic la ripristina.",
    upload_file: "File del plugin (.wasm)",
    upload_button: "Carica e ispeziona",
    upload: "Caricamento plugin",
    review_title: "Nuova versione per {connector}: confermi?",
    running_now: "in uso ora:",
    world: "Mondo",
    contract: "Contratto",
    contract_served: "servito da questo host",
    contract_not_served: "NON servito da questo host",
    capabilities: "Capacità",
    imports: "Importazioni",
    size: "Dimensione",
    review_note: "Non è stato ancora compilato nulla. Confermando viene compilato, verificato \
                  e configurato accanto alla versione in uso, poi le nuove chiamate vanno a \
                  lui; se un passo fallisce resta in servizio la versione in uso.",
    confirm_swap: "Conferma e sostituisci",
    cancel: "Annulla",
    upload_cancelled: "Caricamento annullato: nulla è cambiato.",
    rollback: "Ripristino",
    rollback_to: "Ripristina {plugin}",
    grants: "Permessi",
    grants_none: "nessuno",
    hosts: "host",
    credentials: "credenziali",
    secrets: "segreti",

    audit_title: "Registro modifiche",
    audit_note: "Salvato nello store: le ultime 1000 modifiche fatte dalla console.",
    audit_empty: "Ancora nessuna modifica.",
    when: "Quando",
    who: "Chi",
    what: "Cosa",
    outcome: "Esito",
    who_admin: "amministratore (token)",
    who_loopback: "client loopback (senza token)",
    session: "sessione",
    who_user: "{user} (utente console di {tenant})",
    login_user_title: "Utente della console",
    login_username: "Nome utente",
    login_password: "Password",
    login_user_button: "Accedi come utente",
    login_wrong_password: "Nome utente sconosciuto o password errata.",
    login_admin_title: "Token di amministrazione",
    admin_only: "solo l'amministratore (token) può farlo: cambia file sull'host",
    outcome_done: "fatto",
    outcome_refused: "rifiutato",

    nav_operators: "Operatori",
    nav_routing: "Instradamento",
    operators_title: "Operatori",
    no_operators: "Nessun operatore: questo host non ha instradamento, o non ha operatori.",
    operator: "Operatore",
    presence: "Presenza",
    load: "Carico",
    skills: "Competenze",
    languages: "lingue",
    accounts: "Account",
    holds: "In carico",
    holds_none: "nulla",
    answered: "risposto",
    off_shift: "(fuori orario)",
    presence_online: "Disponibile",
    presence_away: "Assente",
    presence_offline: "Non in servizio",
    set_presence: "Imposta presenza",

    routing_title: "Instradamento",
    no_routing_here: "Questo host non ha instradamento.",
    live_chain: "Catena attiva",
    shadow_chain: "Catena ombra",
    no_shadow: "nessuna",
    decisions: "Decisioni",
    assignments: "assegnazioni",
    queued: "in coda",
    stage_failures: "Errori degli stadi",
    disagreements: "Disaccordi",
    decisions_compared: "decisioni confrontate",
    last_disagreements: "Ultimi disaccordi",
    conversation: "Conversazione",
    outcome_queue: "in coda",
    replay_title: "Riproduci una catena candidata",
    replay_note: "Le conversazioni del periodo salvate nello store passano per la catena \
                  candidata e per quella attiva su un tempo simulato: gli operatori di oggi, \
                  tutti disponibili; ogni risposta e chiusura tanto dopo l'assegnazione quanto \
                  ci volle. Nulla cambia dal vivo.",
    candidate_chain: "Catena candidata",
    period: "Periodo",
    sla_minutes: "SLA di prima risposta (minuti)",
    replay_button: "Riproduci",
    replay: "Riproduzione",
    period_last_hour: "ultima ora",
    period_last_hours: "ultime {hours} ore",
    period_last_days: "ultimi {days} giorni",
    replay_result: "Esito della riproduzione",
    replay_what: "{period} (da {from} a {to}): {conversations} conversazioni, {messages} \
                  messaggi dei clienti.",
    replay_truncated: "Il periodo contiene più conversazioni di quante una riproduzione ne \
                       legga: sono state riprodotte solo le ultime 20000.",
    live_not_replayed: "Non è stato possibile riprodurre la catena attiva",
    conversations: "Conversazioni",
    assigned_to: "Assegnate a {operator}",
    never_assigned: "Mai assegnate",
    wait_p50_p95_max: "Attesa p50 / p95 / max",
    sla_missed: "Prime risposte oltre {minutes} min",
    queue_peak: "Coda massima",
    measure: "Misura",
    switch_note: "Il passaggio carica e configura prima ogni stadio, come una ricarica della \
                  configurazione; catena ombra, operatori e conversazioni restano. Una \
                  successiva ricarica di centralino.toml applica la catena scritta lì.",
    switch_button: "Passa alla catena candidata",
    switch_chain: "Cambio catena",

    refused_title: "Richiesta rifiutata",
    refused_csrf: "Questa richiesta non ha un token CSRF valido, quindi non è cambiato nulla. \
                   Ricarica la pagina e riprova.",
    refused_loopback: "Questo host non ha un token di amministrazione, quindi la console \
                       risponde solo ai client su questa macchina (loopback).",
    refused_origin: "Questa richiesta viene da un altro sito, quindi non è cambiato nulla.",
    back_to_console: "Torna alla console",
};

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_language_follows_accept_language_by_quality() {
        assert_eq!(Lang::of(&accept("it-IT,it;q=0.9,en;q=0.8"), None), Lang::It);
        assert_eq!(Lang::of(&accept("en-GB,it;q=0.5"), None), Lang::En);
        assert_eq!(Lang::of(&accept("de-DE,it;q=0.4,en;q=0.3"), None), Lang::It);
        assert_eq!(Lang::of(&accept("it;q=0,en;q=0.1"), None), Lang::En);
        assert_eq!(Lang::of(&accept("fr"), None), Lang::En);
        assert_eq!(Lang::of(&HeaderMap::new(), None), Lang::En);
    }

    #[test]
    fn a_chosen_language_wins_over_the_browser() {
        let mut headers = accept("it");
        assert_eq!(Lang::of(&headers, Some("en")), Lang::En);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("centralino_lang=en"),
        );
        assert_eq!(Lang::of(&headers, None), Lang::En);
        assert_eq!(Lang::of(&headers, Some("it")), Lang::It);
    }
}
