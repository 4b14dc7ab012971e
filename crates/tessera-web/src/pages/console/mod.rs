//! The admin console's pages (`/console`): pure rendering, as every page here. The handlers
//! (`http/console.rs`) decide what to show and whether the operator may act; a page for an
//! auditor (read-only) simply has no forms that change anything, and the handlers refuse
//! such a post anyway.
//!
//! Every value shown back (e-mail addresses, client names, user agents, audit details) goes
//! through [`escape`]; every form that changes something carries the app session's CSRF
//! token.

mod text;

use std::fmt::Write as _;

use axum::http::StatusCode;
use tessera_idp::alerts::utc_text;
use tessera_idp::mail::{escape, Locale};

use super::chart::{bar_chart, line_chart, Bar, Series};
use super::portal::{app_document, Expiry, NavItem, Shell, SignedInShell};
use super::Page;
pub(crate) use text::{t, K};

/// Where the console lives.
pub const BASE: &str = "/console";

/// What the signed-in operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `tessera:admin`: everything.
    Operator,
    /// `tessera:auditor`: look, never touch.
    Auditor,
}

/// The frame of every console page: who is signed in, the CSRF token of its forms.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub locale: Locale,
    pub email: &'a str,
    pub access: Access,
    pub csrf: &'a str,
    /// The path of this page (with its query), for the language switch to come back to.
    pub here: &'a str,
    /// The session's lifetimes, for the expiry warning.
    pub expiry: Expiry<'a>,
}

/// The console's sections, for the navigation: (path under [`BASE`], label).
const SECTIONS: [(&str, K); 8] = [
    ("", K::Dashboard),
    ("/users", K::Users),
    ("/sessions", K::Sessions),
    ("/clients", K::Clients),
    ("/keys", K::Keys),
    ("/audit", K::Audit),
    ("/roles", K::Roles),
    ("/providers", K::Providers),
];

/// Where the console's sign-out form posts.
pub const SIGN_OUT: &str = "/console/sign-out";
/// The language switch.
pub const LANGUAGE: &str = "/console/language";
/// The session's lifetimes (GET, JSON) and its extension (POST), for the expiry warning.
pub const SESSION_STATUS: &str = "/console/session";
pub const SESSION_EXTEND: &str = "/console/session/extend";

/// A message above a page's content: the outcome of the action just taken.
#[derive(Debug, Clone)]
pub enum Notice {
    Done(String),
    Refused(String),
}

/// A `<form method="post">` to `action` with the CSRF field and `fields` (name, value),
/// and one submit button labelled `label` (text); `danger` styles it as destructive.
fn post_button(
    frame: &Frame<'_>,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    danger: bool,
) -> String {
    let mut out = format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(action),
        escape(frame.csrf)
    );
    for (name, value) in fields {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    let _ = write!(
        out,
        "<button type=\"submit\" class=\"{}\">{}</button></form>",
        if danger {
            "button danger"
        } else {
            "button secondary"
        },
        escape(label)
    );
    out
}

/// The hidden CSRF field of a form.
fn csrf_field(frame: &Frame<'_>) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(frame.csrf)
    )
}

/// A time as the console shows it (UTC), or a dash.
fn when(secs: Option<i64>) -> String {
    secs.map_or_else(|| "—".to_owned(), |s| escape(&utc_text(s)))
}

fn yes_no(locale: Locale, value: bool) -> &'static str {
    t(locale, if value { K::Yes } else { K::No })
}

/// The whole console document, in the hosted apps' frame ([`app_document`]): the header
/// with the navigation, who is signed in, the language switch and sign-out, the
/// session-expiry warning; then `body` (HTML) under an `<h1>` of `title` (text).
pub fn console_page(
    frame: &Frame<'_>,
    status: StatusCode,
    title: &str,
    notice: Option<&Notice>,
    body: &str,
) -> Page {
    let locale = frame.locale;
    let hrefs: Vec<String> = SECTIONS.iter().map(|(path, _)| format!("{BASE}{path}")).collect();
    let nav: Vec<NavItem<'_>> = SECTIONS
        .iter()
        .zip(&hrefs)
        .map(|((_, key), href)| NavItem {
            href,
            label: t(locale, *key),
        })
        .collect();
    let role = t(
        locale,
        match frame.access {
            Access::Operator => K::RoleOperator,
            Access::Auditor => K::RoleAuditor,
        },
    );
    let who = format!("{} ({role})", frame.email);
    let shell = Shell {
        app_name: t(locale, K::Console),
        home: BASE,
        here: frame.here,
        nav: &nav,
        nav_label: t(locale, K::Navigation),
        wide: true,
        signed_in: Some(SignedInShell {
            csrf: frame.csrf,
            who: &who,
            sign_out_url: SIGN_OUT,
            expiry: frame.expiry,
        }),
        language_url: LANGUAGE,
    };
    let mut content = format!("<h1 id=\"page-title\">{}</h1>\n", escape(title));
    match notice {
        Some(Notice::Done(message)) => {
            let _ = writeln!(
                content,
                "<div class=\"notice\" role=\"status\"><p>{}</p></div>",
                escape(message)
            );
        }
        Some(Notice::Refused(message)) => {
            let _ = writeln!(
                content,
                "<div class=\"alert\" role=\"alert\" id=\"form-error\"><p>{}</p></div>",
                escape(message)
            );
        }
        None => {}
    }
    if frame.access == Access::Auditor {
        let _ = writeln!(
            content,
            "<p class=\"muted\">{}</p>",
            escape(t(locale, K::ReadOnlyNotice))
        );
    }
    content.push_str(body);
    app_document(locale, &shell, title, status, &content)
}

// ---------------------------------------------------------------------------------------
// Dashboard
// ---------------------------------------------------------------------------------------

/// What the dashboard shows.
#[derive(Debug, Clone)]
pub struct DashboardView {
    /// The start of the first hour (unix seconds, a whole hour).
    pub first_hour: i64,
    /// Successful and failed sign-ins per hour, oldest first (equal lengths).
    pub succeeded: Vec<u64>,
    pub failed: Vec<u64>,
    /// Alive sessions by channel.
    pub channels: Vec<(String, u64)>,
}

pub fn dashboard_page(frame: &Frame<'_>, view: &DashboardView) -> Page {
    let locale = frame.locale;
    let ticks: Vec<String> = (0..view.succeeded.len())
        .map(|i| {
            let at = view.first_hour + 3_600 * i64::try_from(i).unwrap_or(0);
            // "2026-12-06 09:00:00 UTC" → "09:00"
            utc_text(at).get(11..16).unwrap_or_default().to_owned()
        })
        .collect();
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<section aria-labelledby=\"sign-ins-heading\">\n<h2 id=\"sign-ins-heading\">{}</h2>",
        escape(t(locale, K::SignInsTitle))
    );
    body.push_str(&line_chart(
        "sign-ins",
        t(locale, K::SignInsTitle),
        t(locale, K::SignInsDesc),
        t(locale, K::Hour),
        &ticks,
        &[
            Series {
                label: t(locale, K::Succeeded),
                class: "series-a",
                counts: &view.succeeded,
            },
            Series {
                label: t(locale, K::Failed),
                class: "series-b",
                counts: &view.failed,
            },
        ],
    ));
    body.push_str("</section>\n");
    let total: u64 = view.channels.iter().map(|(_, n)| n).sum();
    let _ = writeln!(
        body,
        "<section aria-labelledby=\"channels-heading\">\n<h2 id=\"channels-heading\">{}</h2>\n\
         <p>{}: <strong>{total}</strong></p>",
        escape(t(locale, K::SessionsByChannelTitle)),
        escape(t(locale, K::ActiveSessions)),
    );
    if view.channels.is_empty() {
        let _ = writeln!(
            body,
            "<p class=\"muted\">{}</p>",
            escape(t(locale, K::NoActiveSessions))
        );
    } else {
        let bars: Vec<Bar<'_>> = view
            .channels
            .iter()
            .map(|(label, value)| Bar { label, value: *value })
            .collect();
        body.push_str(&bar_chart(
            "channels",
            t(locale, K::SessionsByChannelTitle),
            t(locale, K::SessionsByChannelDesc),
            &bars,
        ));
    }
    body.push_str("</section>\n");
    console_page(frame, StatusCode::OK, t(locale, K::Dashboard), None, &body)
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

/// One row of the user list.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: i64,
}

pub fn users_page(frame: &Frame<'_>, query: &str, users: &[UserRow], next: Option<&str>) -> Page {
    let locale = frame.locale;
    let mut body = format!(
        "<form method=\"get\" action=\"{BASE}/users\" role=\"search\" class=\"toolbar\">\n\
         <div class=\"field\"><label for=\"q\">{label}</label>\
         <input id=\"q\" name=\"q\" type=\"search\" inputmode=\"email\" autocomplete=\"off\" \
         spellcheck=\"false\" value=\"{value}\"></div>\n\
         <button type=\"submit\" class=\"button primary\">{search}</button>\n</form>\n",
        label = escape(t(locale, K::SearchByEmail)),
        value = escape(query),
        search = escape(t(locale, K::Search)),
    );
    if users.is_empty() {
        let _ = writeln!(body, "<p class=\"muted\">{}</p>", escape(t(locale, K::NoUsers)));
    } else {
        let _ = writeln!(
            body,
            "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-labelledby=\"page-title\"><table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>",
            escape(t(locale, K::Email)),
            escape(t(locale, K::Verified)),
            escape(t(locale, K::RolesColumn)),
            escape(t(locale, K::Status)),
            escape(t(locale, K::Created)),
        );
        for user in users {
            let _ = writeln!(
                body,
                "<tr><th scope=\"row\"><a href=\"{BASE}/users/{id}\">{email}</a></th><td>{verified}</td>\
                 <td>{roles}</td><td>{status}</td><td>{created}</td></tr>",
                id = escape(&percent(&user.id)),
                email = escape(&user.email),
                verified = escape(yes_no(locale, user.email_verified)),
                roles = escape(&user.roles.join(", ")),
                status = escape(t(locale, if user.disabled { K::Disabled } else { K::Active })),
                created = when(Some(user.created_at)),
            );
        }
        body.push_str("</tbody></table></div>\n");
    }
    if let Some(cursor) = next {
        let _ = writeln!(
            body,
            "<p><a href=\"{BASE}/users?q={q}&amp;cursor={c}\" rel=\"next\">{label}</a></p>",
            q = escape(&percent(query)),
            c = escape(&percent(cursor)),
            label = escape(t(locale, K::NextPage)),
        );
    }
    console_page(frame, StatusCode::OK, t(locale, K::Users), None, &body)
}

/// One alive session, as the user page lists it.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    /// The user's id.
    pub subject: String,
    pub user_agent: Option<String>,
    pub channel: String,
    pub ip: Option<String>,
    pub client_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// One second factor.
#[derive(Debug, Clone)]
pub struct FactorRow {
    pub kind: String,
    pub label: Option<String>,
    pub created_at: i64,
}

/// What the user page shows.
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub user: UserRow,
    pub password_algorithm: String,
    pub sessions: Vec<SessionRow>,
    pub factors: Vec<FactorRow>,
}

pub fn user_page(frame: &Frame<'_>, detail: &UserDetail, notice: Option<&Notice>) -> Page {
    let locale = frame.locale;
    let user = &detail.user;
    let base = format!("{BASE}/users/{}", percent(&user.id));
    let operator = frame.access == Access::Operator;
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<dl class=\"facts\">\n\
         <dt>{l_id}</dt><dd><code>{id}</code></dd>\n\
         <dt>{l_email}</dt><dd>{email}</dd>\n\
         <dt>{l_verified}</dt><dd>{verified}</dd>\n\
         <dt>{l_roles}</dt><dd>{roles}</dd>\n\
         <dt>{l_status}</dt><dd>{status}</dd>\n\
         <dt>{l_hash}</dt><dd>{hash}</dd>\n\
         <dt>{l_created}</dt><dd>{created}</dd>\n\
         </dl>",
        l_id = escape(t(locale, K::UserId)),
        id = escape(&user.id),
        l_email = escape(t(locale, K::Email)),
        email = escape(&user.email),
        l_verified = escape(t(locale, K::Verified)),
        verified = escape(yes_no(locale, user.email_verified)),
        l_roles = escape(t(locale, K::RolesColumn)),
        roles = escape(&user.roles.join(", ")),
        l_status = escape(t(locale, K::Status)),
        status = escape(t(locale, if user.disabled { K::Disabled } else { K::Active })),
        l_hash = escape(t(locale, K::PasswordAlgorithm)),
        hash = escape(&detail.password_algorithm),
        l_created = escape(t(locale, K::Created)),
        created = when(Some(user.created_at)),
    );
    if operator {
        body.push_str("<div class=\"actions\">");
        if user.disabled {
            body.push_str(&post_button(
                frame,
                &format!("{base}/enable"),
                &[],
                t(locale, K::Enable),
                false,
            ));
        } else {
            body.push_str(&post_button(
                frame,
                &format!("{base}/disable"),
                &[],
                t(locale, K::Disable),
                true,
            ));
        }
        body.push_str("</div>\n");
    }

    // Sessions
    let _ = writeln!(
        body,
        "<section aria-labelledby=\"sessions-heading\">\n<h2 id=\"sessions-heading\">{}</h2>",
        escape(t(locale, K::Sessions))
    );
    if detail.sessions.is_empty() {
        let _ = writeln!(
            body,
            "<p class=\"muted\">{}</p>",
            escape(t(locale, K::NoSessions))
        );
    } else {
        let _ = writeln!(
            body,
            "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-labelledby=\"sessions-heading\"><table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>{}</tr></thead>\n<tbody>",
            escape(t(locale, K::Device)),
            escape(t(locale, K::Channel)),
            escape(t(locale, K::Ip)),
            escape(t(locale, K::Client)),
            escape(t(locale, K::Created)),
            escape(t(locale, K::LastSeen)),
            if operator {
                format!("<th scope=\"col\">{}</th>", escape(t(locale, K::Actions)))
            } else {
                String::new()
            },
        );
        for session in &detail.sessions {
            let device = session
                .user_agent
                .as_deref()
                .unwrap_or_else(|| t(locale, K::Unknown));
            let end = if operator {
                format!(
                    "<td>{}</td>",
                    post_button(
                        frame,
                        &format!("{base}/sessions/end"),
                        &[("session", &session.id)],
                        t(locale, K::EndSession),
                        true
                    )
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                body,
                "<tr><td class=\"ua\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{end}</tr>",
                escape(device),
                escape(&session.channel),
                escape(session.ip.as_deref().unwrap_or("—")),
                escape(&session.client_id),
                when(Some(session.created_at)),
                when(Some(session.last_seen_at)),
            );
        }
        body.push_str("</tbody></table></div>\n");
        if operator {
            body.push_str(&post_button(
                frame,
                &format!("{base}/sessions/end-all"),
                &[],
                t(locale, K::EndAllSessions),
                true,
            ));
        }
    }
    body.push_str("</section>\n");

    // Factors
    let _ = writeln!(
        body,
        "<section aria-labelledby=\"factors-heading\">\n<h2 id=\"factors-heading\">{}</h2>",
        escape(t(locale, K::Factors))
    );
    if detail.factors.is_empty() {
        let _ = writeln!(body, "<p class=\"muted\">{}</p>", escape(t(locale, K::NoFactors)));
    } else {
        body.push_str("<ul>");
        for factor in &detail.factors {
            let _ = write!(
                body,
                "<li><strong>{}</strong>{} · {}</li>",
                escape(&factor.kind),
                factor
                    .label
                    .as_deref()
                    .map_or_else(String::new, |l| format!(" “{}”", escape(l))),
                when(Some(factor.created_at)),
            );
        }
        body.push_str("</ul>\n");
        if operator {
            body.push_str(&post_button(
                frame,
                &format!("{base}/mfa/reset"),
                &[],
                t(locale, K::ResetMfa),
                true,
            ));
        }
    }
    body.push_str("</section>\n");

    if operator {
        let _ = writeln!(
            body,
            "<section aria-labelledby=\"delete-heading\" class=\"danger-zone\">\n\
             <h2 id=\"delete-heading\">{delete}</h2>\n\
             <form method=\"post\" action=\"{base}/delete\">{csrf}\n\
             <div class=\"field\"><label for=\"confirm\">{confirm}</label>\
             <input id=\"confirm\" name=\"confirm\" type=\"text\" autocomplete=\"off\" spellcheck=\"false\" required></div>\n\
             <button type=\"submit\" class=\"button danger\">{delete}</button>\n</form>\n</section>",
            delete = escape(t(locale, K::Delete)),
            base = escape(&base),
            csrf = csrf_field(frame),
            confirm = escape(t(locale, K::DeleteUserConfirm)),
        );
    }
    console_page(frame, StatusCode::OK, &user.email, notice, &body)
}

/// Every alive session, most recently active first, a page at a time.
pub fn sessions_page(
    frame: &Frame<'_>,
    sessions: &[SessionRow],
    next: Option<&str>,
    notice: Option<&Notice>,
) -> Page {
    let locale = frame.locale;
    let operator = frame.access == Access::Operator;
    let mut body = String::new();
    if sessions.is_empty() {
        let _ = writeln!(
            body,
            "<p class=\"muted\">{}</p>",
            escape(t(locale, K::NoSessions))
        );
    } else {
        let _ = write!(
            body,
            "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-labelledby=\"page-title\"><table class=\"dense\">\n\
             <thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>{}</tr></thead>\n<tbody>\n",
            escape(t(locale, K::UserId)),
            escape(t(locale, K::Device)),
            escape(t(locale, K::Channel)),
            escape(t(locale, K::Ip)),
            escape(t(locale, K::Client)),
            escape(t(locale, K::Created)),
            escape(t(locale, K::LastSeen)),
            if operator {
                format!("<th scope=\"col\">{}</th>", escape(t(locale, K::Actions)))
            } else {
                String::new()
            },
        );
        for session in sessions {
            let end = if operator {
                format!(
                    "<td>{}</td>",
                    post_button(
                        frame,
                        &format!("{BASE}/users/{}/sessions/end", percent(&session.subject)),
                        &[("session", &session.id), ("return_to", "sessions")],
                        t(locale, K::EndSession),
                        true
                    )
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                body,
                "<tr><th scope=\"row\"><a href=\"{BASE}/users/{path}\"><code>{subject}</code></a></th><td class=\"ua\">{device}</td>\
                 <td>{channel}</td><td>{ip}</td><td>{client}</td><td>{created}</td><td>{seen}</td>{end}</tr>",
                path = escape(&percent(&session.subject)),
                subject = escape(&session.subject),
                device = escape(session.user_agent.as_deref().unwrap_or_else(|| t(locale, K::Unknown))),
                channel = escape(&session.channel),
                ip = escape(session.ip.as_deref().unwrap_or("—")),
                client = escape(&session.client_id),
                created = when(Some(session.created_at)),
                seen = when(Some(session.last_seen_at)),
            );
        }
        body.push_str("</tbody></table></div>\n");
    }
    if let Some(cursor) = next {
        let _ = writeln!(
            body,
            "<p><a href=\"{BASE}/sessions?cursor={}\" rel=\"next\">{}</a></p>",
            escape(&percent(cursor)),
            escape(t(locale, K::NextPage)),
        );
    }
    console_page(frame, StatusCode::OK, t(locale, K::Sessions), notice, &body)
}

// ---------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------

/// One client, as the console shows it.
#[derive(Debug, Clone)]
pub struct ClientRow {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub channel: String,
    pub grant_types: Vec<String>,
    pub scope: String,
    pub redirect_uris: Vec<String>,
    pub first_party: bool,
    pub created_at: i64,
}

pub fn clients_page(frame: &Frame<'_>, clients: &[ClientRow], notice: Option<&Notice>) -> Page {
    let locale = frame.locale;
    let mut body = String::new();
    if frame.access == Access::Operator {
        let _ = writeln!(
            body,
            "<p><a class=\"button primary\" href=\"{BASE}/clients/new\">{}</a></p>",
            escape(t(locale, K::NewClient))
        );
    }
    if clients.is_empty() {
        let _ = writeln!(body, "<p class=\"muted\">{}</p>", escape(t(locale, K::NoClients)));
    } else {
        let _ = writeln!(
            body,
            "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-labelledby=\"page-title\"><table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>",
            escape(t(locale, K::ClientId)),
            escape(t(locale, K::ClientName)),
            escape(t(locale, K::ClientType)),
            escape(t(locale, K::Channel)),
            escape(t(locale, K::Created)),
        );
        for client in clients {
            let _ = writeln!(
                body,
                "<tr><th scope=\"row\"><a href=\"{BASE}/clients/{path}\"><code>{id}</code></a></th><td>{name}</td>\
                 <td>{kind}</td><td>{channel}</td><td>{created}</td></tr>",
                path = escape(&percent(&client.client_id)),
                id = escape(&client.client_id),
                name = escape(&client.name),
                kind = escape(t(locale, if client.public { K::Public } else { K::Confidential })),
                channel = escape(&client.channel),
                created = when(Some(client.created_at)),
            );
        }
        body.push_str("</tbody></table></div>\n");
    }
    console_page(frame, StatusCode::OK, t(locale, K::Clients), notice, &body)
}

/// What the new-client form shows again after a refusal.
#[derive(Debug, Clone, Default)]
pub struct NewClientForm {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub redirect_uris: String,
    pub scope: String,
}

pub fn new_client_page(frame: &Frame<'_>, form: &NewClientForm, notice: Option<&Notice>) -> Page {
    if frame.access != Access::Operator {
        return forbidden_page(frame);
    }
    let locale = frame.locale;
    let status = if matches!(notice, Some(Notice::Refused(_))) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let checked = |public: bool| if form.public == public { " checked" } else { "" };
    let body = format!(
        "<form method=\"post\" action=\"{BASE}/clients/new\">{csrf}\n\
         <div class=\"field\"><label for=\"client_id\">{l_id}</label>\
         <input id=\"client_id\" name=\"client_id\" type=\"text\" required autocomplete=\"off\" spellcheck=\"false\" value=\"{id}\"></div>\n\
         <div class=\"field\"><label for=\"name\">{l_name}</label>\
         <input id=\"name\" name=\"name\" type=\"text\" required autocomplete=\"off\" value=\"{name}\"></div>\n\
         <fieldset class=\"field\"><legend>{l_type}</legend>\
         <label class=\"choice\"><input type=\"radio\" name=\"type\" value=\"confidential\"{c_conf}> {confidential}</label>\
         <label class=\"choice\"><input type=\"radio\" name=\"type\" value=\"public\"{c_pub}> {public}</label></fieldset>\n\
         <div class=\"field\"><label for=\"redirect_uris\">{l_redirect}</label>\
         <textarea id=\"redirect_uris\" name=\"redirect_uris\" rows=\"3\" aria-describedby=\"redirect-hint\" spellcheck=\"false\">{redirect}</textarea>\
         <p class=\"hint\" id=\"redirect-hint\">{redirect_hint}</p></div>\n\
         <div class=\"field\"><label for=\"scope\">{l_scope}</label>\
         <input id=\"scope\" name=\"scope\" type=\"text\" autocomplete=\"off\" spellcheck=\"false\" aria-describedby=\"scope-hint\" value=\"{scope}\">\
         <p class=\"hint\" id=\"scope-hint\">{scope_hint}</p></div>\n\
         <button type=\"submit\" class=\"button primary\">{create}</button>\n</form>\n",
        csrf = csrf_field(frame),
        l_id = escape(t(locale, K::ClientId)),
        id = escape(&form.client_id),
        l_name = escape(t(locale, K::ClientName)),
        name = escape(&form.name),
        l_type = escape(t(locale, K::ClientType)),
        c_conf = checked(false),
        c_pub = checked(true),
        confidential = escape(t(locale, K::Confidential)),
        public = escape(t(locale, K::Public)),
        l_redirect = escape(t(locale, K::RedirectUris)),
        redirect = escape(&form.redirect_uris),
        redirect_hint = escape(t(locale, K::RedirectUrisHint)),
        l_scope = escape(t(locale, K::Scopes)),
        scope = escape(&form.scope),
        scope_hint = escape(t(locale, K::ScopesHint)),
        create = escape(t(locale, K::Create)),
    );
    console_page(frame, status, t(locale, K::NewClient), notice, &body)
}

/// The client page; `secret` is the secret just created or rotated, shown this once.
pub fn client_page(
    frame: &Frame<'_>,
    client: &ClientRow,
    secret: Option<&str>,
    notice: Option<&Notice>,
) -> Page {
    let locale = frame.locale;
    let base = format!("{BASE}/clients/{}", percent(&client.client_id));
    let mut body = String::new();
    if let Some(secret) = secret {
        let _ = writeln!(
            body,
            "<div class=\"secret\" role=\"status\"><p>{}</p>\
             <p><label for=\"secret\">{}</label> <input id=\"secret\" type=\"text\" readonly value=\"{}\" spellcheck=\"false\"></p></div>",
            escape(t(locale, K::SecretOnce)),
            escape(t(locale, K::Secret)),
            escape(secret),
        );
    }
    let _ = writeln!(
        body,
        "<dl class=\"facts\">\n\
         <dt>{l_id}</dt><dd><code>{id}</code></dd>\n\
         <dt>{l_type}</dt><dd>{kind}</dd>\n\
         <dt>{l_channel}</dt><dd>{channel}</dd>\n\
         <dt>{l_grants}</dt><dd>{grants}</dd>\n\
         <dt>{l_scope}</dt><dd>{scope}</dd>\n\
         <dt>{l_created}</dt><dd>{created}</dd>\n\
         </dl>",
        l_id = escape(t(locale, K::ClientId)),
        id = escape(&client.client_id),
        l_type = escape(t(locale, K::ClientType)),
        kind = escape(t(locale, if client.public { K::Public } else { K::Confidential })),
        l_channel = escape(t(locale, K::Channel)),
        channel = escape(&client.channel),
        l_grants = escape(t(locale, K::GrantTypes)),
        grants = escape(&client.grant_types.join(", ")),
        l_scope = escape(t(locale, K::Scopes)),
        scope = escape(&client.scope),
        l_created = escape(t(locale, K::Created)),
        created = when(Some(client.created_at)),
    );
    let editable = frame.access == Access::Operator && !client.first_party;
    if editable {
        let _ = writeln!(
            body,
            "<form method=\"post\" action=\"{base}/edit\">{csrf}\n\
             <div class=\"field\"><label for=\"name\">{l_name}</label>\
             <input id=\"name\" name=\"name\" type=\"text\" required autocomplete=\"off\" value=\"{name}\"></div>\n\
             <div class=\"field\"><label for=\"redirect_uris\">{l_redirect}</label>\
             <textarea id=\"redirect_uris\" name=\"redirect_uris\" rows=\"4\" aria-describedby=\"redirect-hint\" spellcheck=\"false\">{redirect}</textarea>\
             <p class=\"hint\" id=\"redirect-hint\">{redirect_hint}</p></div>\n\
             <button type=\"submit\" class=\"button primary\">{save}</button>\n</form>",
            base = escape(&base),
            csrf = csrf_field(frame),
            l_name = escape(t(locale, K::ClientName)),
            name = escape(&client.name),
            l_redirect = escape(t(locale, K::RedirectUris)),
            redirect = escape(&client.redirect_uris.join("\n")),
            redirect_hint = escape(t(locale, K::RedirectUrisHint)),
            save = escape(t(locale, K::Save)),
        );
        if !client.public {
            body.push_str("<div class=\"actions\">");
            body.push_str(&post_button(
                frame,
                &format!("{base}/rotate-secret"),
                &[],
                t(locale, K::RotateSecret),
                true,
            ));
            body.push_str("</div>\n");
        }
    } else {
        let _ = write!(
            body,
            "<h2>{}</h2>\n<ul class=\"plain\">",
            escape(t(locale, K::RedirectUris))
        );
        for uri in &client.redirect_uris {
            let _ = write!(body, "<li><code>{}</code></li>", escape(uri));
        }
        body.push_str("</ul>\n");
    }
    let title = if client.name.trim().is_empty() {
        client.client_id.as_str()
    } else {
        client.name.as_str()
    };
    console_page(frame, StatusCode::OK, title, notice, &body)
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

/// One signing key.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub status: String,
    pub created_at: i64,
    pub activates_at: i64,
    pub retires_at: Option<i64>,
    pub expires_at: Option<i64>,
}

pub fn keys_page(frame: &Frame<'_>, keys: &[KeyRow], notice: Option<&Notice>) -> Page {
    let locale = frame.locale;
    let mut body = format!(
        "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-labelledby=\"page-title\"><table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
        escape(t(locale, K::Kid)),
        escape(t(locale, K::Algorithm)),
        escape(t(locale, K::KeyStatus)),
        escape(t(locale, K::Created)),
        escape(t(locale, K::Activates)),
        escape(t(locale, K::Retires)),
        escape(t(locale, K::Expires)),
    );
    for key in keys {
        let _ = writeln!(
            body,
            "<tr><th scope=\"row\"><code class=\"kid\">{}</code></th><td>{}</td><td><span class=\"tag {status}\">{status}</span></td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&key.kid),
            escape(&key.alg),
            when(Some(key.created_at)),
            when(Some(key.activates_at)),
            when(key.retires_at),
            when(key.expires_at),
            status = escape(&key.status),
        );
    }
    body.push_str("</tbody></table></div>\n");
    if frame.access == Access::Operator {
        body.push_str(&post_button(
            frame,
            &format!("{BASE}/keys/rotate"),
            &[],
            t(locale, K::RotateKeys),
            true,
        ));
    }
    console_page(frame, StatusCode::OK, t(locale, K::Keys), notice, &body)
}

// ---------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------

/// One audit event.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

/// The audit page's filter, as typed.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user: String,
    pub event: String,
    pub since: String,
    pub until: String,
}

impl AuditFilter {
    /// The filter as a query string (for the next page's link), already percent-encoded.
    pub fn query(&self) -> String {
        let mut pairs = Vec::new();
        for (name, value) in [
            ("user", &self.user),
            ("type", &self.event),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.is_empty() {
                pairs.push(format!("{name}={}", percent(value)));
            }
        }
        pairs.join("&")
    }
}

pub fn audit_page(
    frame: &Frame<'_>,
    filter: &AuditFilter,
    events: &[EventRow],
    next: Option<&str>,
    refused: Option<&Notice>,
) -> Page {
    let locale = frame.locale;
    let status = if refused.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut body = format!(
        "<form method=\"get\" action=\"{BASE}/audit\" class=\"toolbar\" role=\"search\">\n\
         <div class=\"field\"><label for=\"user\">{l_user}</label><input id=\"user\" name=\"user\" type=\"text\" spellcheck=\"false\" autocomplete=\"off\" value=\"{user}\"></div>\n\
         <div class=\"field\"><label for=\"type\">{l_event}</label><input id=\"type\" name=\"type\" type=\"text\" spellcheck=\"false\" autocomplete=\"off\" value=\"{event}\"></div>\n\
         <div class=\"field\"><label for=\"since\">{l_since}</label><input id=\"since\" name=\"since\" type=\"datetime-local\" aria-describedby=\"time-hint\" value=\"{since}\"></div>\n\
         <div class=\"field\"><label for=\"until\">{l_until}</label><input id=\"until\" name=\"until\" type=\"datetime-local\" aria-describedby=\"time-hint\" value=\"{until}\"></div>\n\
         <button type=\"submit\" class=\"button primary\">{filter_label}</button>\n\
         <p class=\"hint\" id=\"time-hint\">{hint}</p>\n</form>\n",
        l_user = escape(t(locale, K::Subject)),
        user = escape(&filter.user),
        l_event = escape(t(locale, K::Event)),
        event = escape(&filter.event),
        l_since = escape(t(locale, K::Since)),
        since = escape(&filter.since),
        l_until = escape(t(locale, K::Until)),
        until = escape(&filter.until),
        filter_label = escape(t(locale, K::Filter)),
        hint = escape(t(locale, K::SinceHint)),
    );
    if events.is_empty() {
        let _ = writeln!(body, "<p class=\"muted\">{}</p>", escape(t(locale, K::NoEvents)));
    } else {
        let _ = writeln!(
            body,
            "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-labelledby=\"page-title\"><table class=\"dense\">\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th></tr></thead>\n<tbody>",
            escape(t(locale, K::Time)),
            escape(t(locale, K::Event)),
            escape(t(locale, K::Outcome)),
            escape(t(locale, K::Actor)),
            escape(t(locale, K::Subject)),
            escape(t(locale, K::Client)),
            escape(t(locale, K::Ip)),
        );
        for event in events {
            let detail = event.detail.as_deref().map_or_else(String::new, |d| {
                format!("<br><small><code>{}</code></small>", escape(d))
            });
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td><code>{}</code>{detail}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                when(Some(event.at)),
                escape(&event.event),
                escape(&event.outcome),
                escape(event.actor.as_deref().unwrap_or("—")),
                escape(event.subject.as_deref().unwrap_or("—")),
                escape(event.client_id.as_deref().unwrap_or("—")),
                escape(event.ip.as_deref().unwrap_or("—")),
            );
        }
        body.push_str("</tbody></table></div>\n");
    }
    if let Some(cursor) = next {
        let query = filter.query();
        let sep = if query.is_empty() { "" } else { "&" };
        let _ = writeln!(
            body,
            "<p><a href=\"{BASE}/audit?{q}{sep}cursor={c}\" rel=\"next\">{label}</a></p>",
            q = escape(&query),
            sep = escape(sep),
            c = escape(&percent(cursor)),
            label = escape(t(locale, K::NextPage)),
        );
    }
    console_page(frame, status, t(locale, K::Audit), refused, &body)
}

// ---------------------------------------------------------------------------------------
// Roles and providers (read-only here)
// ---------------------------------------------------------------------------------------

/// One role.
#[derive(Debug, Clone)]
pub struct RoleRow {
    pub name: String,
    pub parents: Vec<String>,
    pub permissions: Vec<String>,
}

pub fn roles_page(frame: &Frame<'_>, roles: &[RoleRow]) -> Page {
    let locale = frame.locale;
    let mut body = String::new();
    if roles.is_empty() {
        let _ = writeln!(body, "<p class=\"muted\">{}</p>", escape(t(locale, K::NoRoles)));
    } else {
        let _ = writeln!(
            body,
            "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-labelledby=\"page-title\"><table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th></tr></thead>\n<tbody>",
            escape(t(locale, K::Role)),
            escape(t(locale, K::Parents)),
            escape(t(locale, K::Permissions)),
        );
        for role in roles {
            let _ = writeln!(
                body,
                "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td><td>{}</td></tr>",
                escape(&role.name),
                escape(&role.parents.join(", ")),
                escape(&role.permissions.join(" ")),
            );
        }
        body.push_str("</tbody></table></div>\n");
    }
    console_page(frame, StatusCode::OK, t(locale, K::Roles), None, &body)
}

/// One upstream sign-in provider.
#[derive(Debug, Clone)]
pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub issuer: String,
}

pub fn providers_page(frame: &Frame<'_>, providers: &[ProviderRow]) -> Page {
    let locale = frame.locale;
    let mut body = String::new();
    if providers.is_empty() {
        let _ = writeln!(
            body,
            "<p class=\"muted\">{}</p>",
            escape(t(locale, K::NoProviders))
        );
    } else {
        let _ = writeln!(
            body,
            "<div class=\"table-wrap\" role=\"region\" tabindex=\"0\" aria-labelledby=\"page-title\"><table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th></tr></thead>\n<tbody>",
            escape(t(locale, K::Provider)),
            escape(t(locale, K::ClientName)),
            escape(t(locale, K::Issuer)),
        );
        for provider in providers {
            let _ = writeln!(
                body,
                "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td><td><code>{}</code></td></tr>",
                escape(&provider.id),
                escape(&provider.name),
                escape(&provider.issuer),
            );
        }
        body.push_str("</tbody></table></div>\n");
    }
    console_page(frame, StatusCode::OK, t(locale, K::Providers), None, &body)
}

/// A console page saying the signed-in account may not do (or see) this: 403.
pub fn forbidden_page(frame: &Frame<'_>) -> Page {
    let locale = frame.locale;
    let body = format!("<p>{}</p>\n", escape(t(locale, K::ForbiddenLede)));
    console_page(frame, StatusCode::FORBIDDEN, t(locale, K::Forbidden), None, &body)
}

/// 404 inside the console.
pub fn not_found_page(frame: &Frame<'_>) -> Page {
    let locale = frame.locale;
    console_page(frame, StatusCode::NOT_FOUND, t(locale, K::NotFound), None, "")
}

/// `value` percent-encoded for a path segment or a query value (RFC 3986 unreserved kept).
pub fn percent(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests;
