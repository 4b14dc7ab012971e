//! `/account/sessions` (R9): the user's alive sessions with device, channel, IP, client,
//! created and last seen; end one, or all but this one. The new-sign-in alert e-mail links
//! here. Through the token service and the provider, as `DELETE /auth/sessions/{id}` and
//! RP-initiated logout do.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tessera_idp::audit::RequestContext;
use tessera_idp::state::AppState;
use tessera_store::durable::SessionRecord;

use super::{here, shell, signed, signed_form};
use crate::http::portal::{self, Signed};
use crate::http::request::Context;
use crate::pages::portal::account::{self as view, path, Frame, SessionItem, SessionsNotice};

/// `GET /account/sessions[?done=ended|others]`.
pub async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let signed = match signed(&state, &headers, &method, &uri).await {
        Ok(signed) => signed,
        Err(sign_in) => return sign_in,
    };
    let notice = match query.get("done").map(String::as_str) {
        Some("ended") => Some(SessionsNotice::Ended),
        Some("others") => Some(SessionsNotice::OthersEnded),
        _ => None,
    };
    render(&state, &signed, &uri, notice, StatusCode::OK).await
}

async fn render(
    state: &AppState,
    signed: &Signed,
    uri: &Uri,
    notice: Option<SessionsNotice>,
    status: StatusCode,
) -> Response {
    let mut sessions = match state.tokens.sessions_of(&signed.user.id).await {
        Ok(sessions) => sessions,
        Err(err) => return portal::server_error(signed.locale, &err),
    };
    // This one first, then the most recently active.
    sessions.sort_by_key(|s| (s.id != signed.session.id, -s.last_seen_at));
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for session in &sessions {
        if names.contains_key(&session.client_id) {
            continue;
        }
        let name = match state.clients.client(&session.client_id).await {
            Ok(Some(client)) if !client.name.trim().is_empty() => client.name,
            Ok(_) => session.client_id.clone(),
            Err(err) => return portal::server_error(signed.locale, &err),
        };
        names.insert(session.client_id.clone(), name);
    }
    let items: Vec<SessionItem<'_>> = sessions
        .iter()
        .map(|s| SessionItem {
            id: &s.id,
            application: names
                .get(&s.client_id)
                .map_or(s.client_id.as_str(), String::as_str),
            channel: &s.channel,
            user_agent: s.user_agent.as_deref(),
            ip: s.ip.as_deref(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            current: s.id == signed.session.id,
        })
        .collect();
    let here = here(uri);
    let frame = Frame {
        here: &here,
        signed_in: Some(shell(state, signed)),
    };
    let mut page = view::sessions_page(signed.locale, &frame, &items, notice);
    page.status = status;
    page.into_response()
}

/// Ends `session` (another of the user's) and, when it came through a browser sign-in other
/// than this page's, that sign-in too: a device signed out here must not come back through
/// its SSO cookie.
async fn end(
    state: &AppState,
    signed: &Signed,
    session: &SessionRecord,
    reason: &str,
    context: &RequestContext,
) -> Result<(), String> {
    let actor = signed.actor();
    state
        .tokens
        .end_session(&session.id, reason, &actor, context)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(sso) = &session.sso_session_id {
        if *sso != signed.app_session.sso_session_id {
            state
                .provider
                .end_sso(sso, reason, &actor, context)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// `POST /account/sessions/end` (`csrf`, `session`): ends one of the user's other alive
/// sessions; any other id (another user's, this one, an ended one) is a 404 that ends
/// nothing.
pub async fn end_session(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (signed, form) = match signed_form(&state, &headers, &uri, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let sessions = match state.tokens.sessions_of(&signed.user.id).await {
        Ok(sessions) => sessions,
        Err(err) => return portal::server_error(signed.locale, &err),
    };
    let target = form
        .get("session")
        .and_then(|id| sessions.iter().find(|s| s.id == *id && s.id != signed.session.id));
    let Some(target) = target else {
        let list = Uri::from_static(path::SESSIONS);
        return render(
            &state,
            &signed,
            &list,
            Some(SessionsNotice::NoSuchSession),
            StatusCode::NOT_FOUND,
        )
        .await;
    };
    if let Err(err) = end(&state, &signed, target, "ended_by_user", &context).await {
        return portal::server_error(signed.locale, &err);
    }
    portal::see_other(&format!("{}?done=ended", path::SESSIONS))
}

/// `POST /account/sessions/end-others` (`csrf`): ends every alive session of the user but
/// this one.
pub async fn end_others(
    State(state): State<AppState>,
    Context(context): Context,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let (signed, _) = match signed_form(&state, &headers, &uri, &body).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let sessions = match state.tokens.sessions_of(&signed.user.id).await {
        Ok(sessions) => sessions,
        Err(err) => return portal::server_error(signed.locale, &err),
    };
    for session in sessions.iter().filter(|s| s.id != signed.session.id) {
        if let Err(err) = end(&state, &signed, session, "ended_by_user_all_others", &context).await {
            return portal::server_error(signed.locale, &err);
        }
    }
    portal::see_other(&format!("{}?done=others", path::SESSIONS))
}
