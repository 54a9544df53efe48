//! The web process: HTTP, the pages, the terminal websocket. It runs as an
//! unprivileged user and can do nothing to an instance by itself: it passes
//! each request, with the caller's credential, to the root helper.
//!
//! Routes:
//! ```text
//! GET  /?token=T        exchange a login token for the session cookie
//! GET  /                the student's page, the teacher's page, or the login form
//! GET  /static/NAME     the page's script and styles, xterm.js
//! GET  /ws              the terminal (ttyd's protocol): ?shell=N, or ?student=NAME for the teacher's view
//! GET  /token           ttyd's token endpoint (empty: the cookie is the credential)
//! GET  /api/me          who is logged in, the lab's texts
//! POST /api/check       run the lab's checks ({"student": NAME} for the teacher)
//! GET  /api/class       the class table (teacher)
//! POST /api/act         {"action": "start"|"stop"|"reset", "student": NAME or absent for all} (teacher)
//! GET  /api/grades.csv  /api/grades.json   (teacher)
//! POST /api/logout
//! ```

mod client;
mod limiter;
mod pages;
mod terminal;
pub mod ttyd;

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::protocol::{Action, Reply, Request, Who};
use super::{WebConfig, drop_privileges};
use crate::cli::Failure;
use client::HelperClient;
use limiter::{Counted, Limiter};
use terminal::{Control, Out, Terminals};

pub const COOKIE: &str = "sandbox_session";
/// Websockets open at once, for the whole class.
const MAX_SOCKETS: u64 = 1024;
/// How long a new websocket may take to say who it is.
const HELLO_LIMIT: Duration = Duration::from_secs(10);

struct App {
    helper: HelperClient,
    origins: Vec<String>,
    secure_cookie: bool,
    terminals: Terminals,
    logins: Limiter,
}

/// Why a request has no session.
enum Refused {
    /// No cookie, or one that is no session.
    NoSession,
    /// The address guessed too often: the credential was not even looked at.
    Wait(Duration),
}

/// `sandbox serve-web` (started by `sandbox serve`, never by hand).
pub fn main(config: &str) -> Result<ExitCode, Failure> {
    let config: WebConfig = serde_json::from_str(config)?;
    // First of all, before a byte is read from the network.
    drop_privileges(config.uid, config.gid).map_err(|e| Failure { message: format!("cannot drop privileges: {e}") })?;
    // SAFETY: `sandbox serve` opened these descriptors for this process and
    // passed their numbers; nothing else in this process owns them.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(config.listener_fd) };
    let helper = unsafe { OwnedFd::from_raw_fd(config.helper_fd) };
    let read_fd = |fd: Option<i32>| -> std::io::Result<Option<Vec<u8>>> {
        let Some(fd) = fd else { return Ok(None) };
        // SAFETY: as above.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)?;
        Ok(Some(bytes))
    };
    let tls = match (read_fd(config.tls_cert_fd)?, read_fd(config.tls_key_fd)?) {
        (Some(cert), Some(key)) => Some((cert, key)),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(serve(config, listener, helper, tls))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    config: WebConfig,
    listener: std::net::TcpListener,
    helper: OwnedFd,
    tls: Option<(Vec<u8>, Vec<u8>)>,
) -> std::io::Result<()> {
    let app = Arc::new(App {
        helper: HelperClient::start(helper)?,
        secure_cookie: tls.is_some() || config.origins.iter().any(|o| o.starts_with("https://")),
        origins: config.origins.clone(),
        terminals: Terminals::default(),
        logins: Limiter::default(),
    });
    let router = Router::new()
        .route("/", get(index))
        .route("/static/{name}", get(pages::asset))
        .route("/token", get(|| async { axum::Json(serde_json::json!({"token": ""})) }))
        .route("/ws", get(websocket))
        .route("/api/me", get(me))
        .route("/api/check", post(check))
        .route("/api/class", get(class))
        .route("/api/act", post(act))
        .route("/api/grades.csv", get(grades_csv))
        .route("/api/grades.json", get(grades_json))
        .route("/api/logout", post(logout))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app);
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some((cert, key)) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem(cert, key)
                .await
                .map_err(|e| std::io::Error::other(format!("the TLS certificate or key: {e}")))?;
            axum_server::tls_rustls::from_tcp_rustls(listener, config)?.serve(service).await
        }
        None => axum_server::from_tcp(listener)?.serve(service).await,
    }
}

/// On every response: a content security policy that lets the page load
/// only its own scripts and talk only to this server, no framing, no referrer
/// (a link with a token must never leak through one), no caching of pages.
async fn security_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let is_asset = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // xterm.js sets its colours with a <style> element it writes: styles may
    // be inline, scripts never.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
             font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

impl App {
    fn origin_ok(&self, headers: &HeaderMap) -> bool {
        origin_allowed(&self.origins, headers)
    }

    /// Counts a credential the helper refused. The log names the address,
    /// never the credential, and a blocked address once.
    fn failed(&self, ip: IpAddr, credential: &str, what: &str) {
        match self.logins.failed(ip, credential) {
            Counted::Again => {}
            Counted::Once => eprintln!("serve: a failed login from {ip} ({what})"),
            Counted::Blocked => eprintln!(
                "serve: {ip} is refused every login for {} s: {} failed logins within {} s",
                limiter::WINDOW.as_secs(),
                limiter::FAILURES,
                limiter::WINDOW.as_secs()
            ),
        }
    }

    /// The caller's session. A cookie is a credential like a token: from a
    /// blocked address it is not looked at, and a wrong one counts.
    async fn who(&self, headers: &HeaderMap, ip: IpAddr) -> Result<(Who, String), Refused> {
        let Some(cookie) = session_cookie(headers) else { return Err(Refused::NoSession) };
        self.logins.check(ip).map_err(Refused::Wait)?;
        match self.helper.ask(Request::Whoami { cookie: cookie.clone() }).await {
            Reply::Who(who) => Ok((who, cookie)),
            Reply::Denied(_) => {
                self.failed(ip, &cookie, "a cookie that is no session");
                Err(Refused::NoSession)
            }
            _ => Err(Refused::NoSession),
        }
    }

    fn cookie_header(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure_cookie { "; Secure" } else { "" };
        HeaderValue::from_str(&format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// A browser's request must come from one of our own pages (`origins`: the
/// listen address, `localhost` for loopback, every `--origin`). Requests
/// without an Origin (curl, a ttyd client) are not a browser's cross-site
/// request, and still need a credential.
fn origin_allowed(origins: &[String], headers: &HeaderMap) -> bool {
    let mut given = headers.get_all(header::ORIGIN).iter();
    match (given.next(), given.next()) {
        (None, _) => true,
        (Some(origin), None) => origin.to_str().is_ok_and(|origin| origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin))),
        // Two Origin headers: no browser sends that.
        (Some(_), Some(_)) => false,
    }
}

/// 429 with Retry-After, as JSON for the API.
fn too_many(wait: Duration) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(serde_json::json!({"error": "too many failed logins from this address: wait a minute"})),
    )
        .into_response();
    set_retry_after(&mut response, wait);
    response
}

fn set_retry_after(response: &mut Response, wait: Duration) {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(limiter::retry_after_seconds(wait)));
}

fn refused(why: Refused) -> Response {
    match why {
        Refused::NoSession => forbidden(),
        Refused::Wait(wait) => too_many(wait),
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        // What a logout leaves behind, until the browser drops it.
        .filter(|value| !value.is_empty())
}

#[derive(serde::Deserialize)]
struct IndexQuery {
    token: Option<String>,
}

type Shared = State<Arc<App>>;

async fn index(
    State(app): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<IndexQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = query.token {
        if let Err(wait) = app.logins.check(peer.ip()) {
            let mut response = pages::message(StatusCode::TOO_MANY_REQUESTS, "Too many failed logins from this address: wait a minute.");
            set_retry_after(&mut response, wait);
            return response;
        }
        return match app.helper.ask(Request::Login { token: token.clone() }).await {
            Reply::Session { cookie, who } => {
                eprintln!("serve: {} logged in from {}", who.key(), peer.ip());
                // A page that moves on to `/` by itself: a cookie set on a
                // redirect that began on another site (the link in a chat) is
                // not sent back by the browser (SameSite=Strict); a page of our
                // own that navigates is same-site.
                let mut response = pages::logged_in();
                response.headers_mut().insert(header::SET_COOKIE, app.cookie_header(&cookie, 14 * 24 * 3600));
                response
            }
            Reply::Denied(why) => {
                app.failed(peer.ip(), &token, "a wrong token");
                pages::message(StatusCode::FORBIDDEN, &format!("This link does not log you in ({why}). Ask your teacher for a new one."))
            }
            other => pages::message(StatusCode::INTERNAL_SERVER_ERROR, &failure_text(&other)),
        };
    }
    match app.who(&headers, peer.ip()).await {
        Ok((Who::Teacher, _)) => pages::page("teacher"),
        Ok((Who::Student(_), _)) => pages::page("student"),
        Err(Refused::NoSession) => pages::page("login"),
        Err(Refused::Wait(wait)) => {
            let mut response = pages::message(StatusCode::TOO_MANY_REQUESTS, "Too many failed logins from this address: wait a minute.");
            set_retry_after(&mut response, wait);
            response
        }
    }
}

fn failure_text(reply: &Reply) -> String {
    match reply {
        Reply::Denied(why) | Reply::Failed(why) => why.clone(),
        _ => "unexpected answer from the helper".into(),
    }
}

fn reply_response(reply: Reply) -> Response {
    match reply {
        Reply::Denied(why) => (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({"error": why}))).into_response(),
        Reply::Failed(why) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(serde_json::json!({"error": why}))).into_response(),
        Reply::Checked(report) => axum::Json(report).into_response(),
        Reply::Done(message) => axum::Json(serde_json::json!({"done": message})).into_response(),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({"error": "log in first"}))).into_response()
}

fn bad_origin() -> Response {
    (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({"error": "request from another site"}))).into_response()
}

async fn me(State(app): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    let (who, _) = match app.who(&headers, peer.ip()).await {
        Ok(found) => found,
        Err(why) => return refused(why),
    };
    let lab = match app.helper.ask(Request::Lab).await {
        Reply::Lab(lab) => lab,
        _ => None,
    };
    axum::Json(serde_json::json!({"who": who, "lab": lab})).into_response()
}

#[derive(serde::Deserialize, Default)]
struct Target {
    student: Option<String>,
}

async fn check(State(app): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap, body: Bytes) -> Response {
    if !app.origin_ok(&headers) {
        return bad_origin();
    }
    let cookie = match app.who(&headers, peer.ip()).await {
        Ok((_, cookie)) => cookie,
        Err(why) => return refused(why),
    };
    let target: Target = serde_json::from_slice(&body).unwrap_or_default();
    reply_response(app.helper.ask(Request::Check { cookie, student: target.student }).await)
}

#[derive(serde::Deserialize)]
struct ActBody {
    action: Action,
    student: Option<String>,
}

async fn act(State(app): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap, body: Bytes) -> Response {
    if !app.origin_ok(&headers) {
        return bad_origin();
    }
    let cookie = match app.who(&headers, peer.ip()).await {
        Ok((_, cookie)) => cookie,
        Err(why) => return refused(why),
    };
    let Ok(body) = serde_json::from_slice::<ActBody>(&body) else {
        return (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": "expected {\"action\": ..., \"student\": ...}"})))
            .into_response();
    };
    reply_response(app.helper.ask(Request::Act { cookie, action: body.action, student: body.student }).await)
}

async fn logout(State(app): Shared, headers: HeaderMap) -> Response {
    if !app.origin_ok(&headers) {
        return bad_origin();
    }
    if let Some(cookie) = session_cookie(&headers) {
        let _ = app.helper.ask(Request::Logout { cookie }).await;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, app.cookie_header("", 0));
    response
}

/// The class table with what only the web process knows added: last input, open shells.
async fn class_rows(app: &App, headers: &HeaderMap, ip: IpAddr) -> Result<Vec<serde_json::Value>, Response> {
    let (_, cookie) = app.who(headers, ip).await.map_err(refused)?;
    let rows = match app.helper.ask(Request::Class { cookie }).await {
        Reply::Class(rows) => rows,
        other => return Err(reply_response(other)),
    };
    let open = app.terminals.open_shells().await;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut value = serde_json::to_value(&row).unwrap_or_default();
            value["last_activity"] = app.terminals.last_activity(&row.name).into();
            value["shells"] = open.get(&row.name).cloned().unwrap_or_default().into();
            value
        })
        .collect())
}

async fn class(State(app): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    match class_rows(&app, &headers, peer.ip()).await {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(response) => response,
    }
}

async fn grades_json(State(app): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    match class_rows(&app, &headers, peer.ip()).await {
        Ok(rows) => {
            let grades: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| serde_json::json!({"student": r["name"], "checks": r["checks"], "checked_at": r["checked_at"]}))
                .collect();
            download(axum::Json(grades).into_response(), "grades.json")
        }
        Err(response) => response,
    }
}

async fn grades_csv(State(app): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    let rows = match class_rows(&app, &headers, peer.ip()).await {
        Ok(rows) => rows,
        Err(response) => return response,
    };
    let checks: Vec<String> = match app.helper.ask(Request::Lab).await {
        Reply::Lab(Some(lab)) => lab.checks.into_iter().map(|c| c.id).collect(),
        _ => Vec::new(),
    };
    let mut csv = String::from("student");
    for id in &checks {
        csv.push(',');
        csv.push_str(&csv_field(id));
    }
    csv.push_str(",passed,total,checked_at\n");
    for row in &rows {
        csv.push_str(&csv_field(row["name"].as_str().unwrap_or("")));
        let mut passed = 0;
        for id in &checks {
            let value = match row["checks"][id.as_str()].as_bool() {
                Some(true) => {
                    passed += 1;
                    "1"
                }
                Some(false) => "0",
                None => "",
            };
            csv.push(',');
            csv.push_str(value);
        }
        let at = row["checked_at"].as_u64().map(|t| t.to_string()).unwrap_or_default();
        csv.push_str(&format!(",{passed},{},{at}\n", checks.len()));
    }
    let mut response = csv.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    download(response, "grades.csv")
}

/// A CSV field, quoted when it must be; a leading `=`, `+`, `-` or `@` is
/// defused so a spreadsheet does not run it as a formula.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_string() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

fn download(mut response: Response, name: &'static str) -> Response {
    let value =
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    response
}

#[derive(serde::Deserialize)]
struct WsQuery {
    shell: Option<u8>,
    student: Option<String>,
}

async fn websocket(
    State(app): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<WsQuery>,
    method: Method,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if method != Method::GET || !app.origin_ok(&headers) {
        return bad_origin();
    }
    // Every terminal needs a credential (the cookie, or the hello's token).
    if let Err(wait) = app.logins.check(peer.ip()) {
        return too_many(wait);
    }
    let offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == ttyd::PROTOCOL);
    if !offered {
        return (StatusCode::BAD_REQUEST, "the terminal speaks ttyd's protocol: ask for the subprotocol `tty`").into_response();
    }
    if app.terminals.attached.load(std::sync::atomic::Ordering::SeqCst) >= MAX_SOCKETS {
        return (StatusCode::SERVICE_UNAVAILABLE, "too many terminals open").into_response();
    }
    let cookie = session_cookie(&headers);
    upgrade.protocols([ttyd::PROTOCOL]).max_message_size(256 * 1024).on_upgrade(move |socket| async move {
        app.terminals.attached.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        terminal_session(&app, socket, cookie, query, peer.ip()).await;
        app.terminals.attached.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    })
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

/// One websocket: the hello, then output to it and input from it until
/// either side goes. Leaving never ends the shell.
async fn terminal_session(app: &App, mut socket: WebSocket, cookie: Option<String>, query: WsQuery, ip: IpAddr) {
    const POLICY: u16 = 1008;
    // The browser's terminal reconnects after this one (by itself, later), not after 1008.
    const TRY_AGAIN_LATER: u16 = 1013;
    let hello = match tokio::time::timeout(HELLO_LIMIT, socket.recv()).await {
        Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
        Ok(Some(Ok(Message::Text(text)))) => Bytes::copy_from_slice(text.as_bytes()),
        _ => return close(socket, POLICY, "expected the hello message first").await,
    };
    let ttyd::ClientFrame::Hello(hello) = ttyd::parse(&hello) else {
        return close(socket, POLICY, "expected the hello message first").await;
    };
    // The session cookie, else the AuthToken (a login token, as ttyd's --credential).
    // The block may have begun since the upgrade.
    if app.logins.check(ip).is_err() {
        return close(socket, TRY_AGAIN_LATER, "too many failed logins from this address: wait a minute").await;
    }
    let mut who = None;
    if let Some(cookie) = cookie {
        match app.helper.ask(Request::Whoami { cookie: cookie.clone() }).await {
            Reply::Who(person) => who = Some((person, cookie)),
            Reply::Denied(_) => app.failed(ip, &cookie, "a cookie that is no session"),
            _ => {}
        }
    }
    if who.is_none()
        && let Some(token) = hello.auth_token.filter(|t| !t.is_empty())
    {
        if app.logins.check(ip).is_err() {
            return close(socket, TRY_AGAIN_LATER, "too many failed logins from this address: wait a minute").await;
        }
        match app.helper.ask(Request::Login { token: token.clone() }).await {
            Reply::Session { cookie, who: person } => who = Some((person, cookie)),
            Reply::Denied(_) => app.failed(ip, &token, "a wrong token"),
            _ => {}
        }
    }
    let Some((who, cookie)) = who else { return close(socket, POLICY, "not a valid login").await };
    let number = query.shell.unwrap_or(0);
    if number >= terminal::SHELLS_PER_STUDENT {
        return close(socket, POLICY, "no such shell").await;
    }
    // A student types into their own shell; the teacher watches a student's.
    let (student, writable, terminal) = match (&who, query.student) {
        (Who::Student(own), other) => {
            if other.is_some_and(|o| &o != own) {
                return close(socket, POLICY, "a student may only open their own terminal").await;
            }
            let (columns, rows) = (hello.columns, hello.rows);
            let opened = app
                .terminals
                .get_or_open(own, number, || async {
                    match app.helper.call(Request::OpenShell { cookie: cookie.clone(), columns, rows }).await {
                        Ok((Reply::Shell, Some(master))) => Ok(master),
                        Ok((reply, _)) => Err(failure_text(&reply)),
                        Err(error) => Err(error.to_string()),
                    }
                })
                .await;
            match opened {
                Ok(terminal) => (own.clone(), true, terminal),
                Err(why) => return close(socket, 1011, &truncate(&why)).await,
            }
        }
        (Who::Teacher, Some(student)) => {
            // The helper confirms the teacher (a forged role never gets here:
            // `who` came from it) and the web process holds the shells.
            match app.terminals.get(&student, number).await {
                Some(terminal) => (student, false, terminal),
                None => return close(socket, 1011, &format!("{student} has no terminal {number} open")).await,
            }
        }
        (Who::Teacher, None) => return close(socket, POLICY, "the teacher watches a student's terminal: ?student=NAME").await,
    };
    let Some(mut viewer) = terminal.attach() else { return close(socket, 1013, "too many tabs on this terminal").await };
    let title = format!("{student}{}", if writable { "" } else { " (read-only)" });
    let preferences = serde_json::json!({"disableStdin": !writable});
    let greeting =
        [ttyd::frame(ttyd::SET_WINDOW_TITLE, title.as_bytes()), ttyd::frame(ttyd::SET_PREFERENCES, preferences.to_string().as_bytes())];
    for frame in greeting {
        if socket.send(Message::Binary(frame.into())).await.is_err() {
            return terminal.detach(viewer.id);
        }
    }
    if writable && hello.columns > 0 && hello.rows > 0 {
        terminal.send(Control::Resize(hello.columns, hello.rows)).await;
    }
    if !viewer.scrollback.is_empty() {
        let scrollback = std::mem::take(&mut viewer.scrollback);
        if socket.send(Message::Binary(ttyd::frame(ttyd::OUTPUT, &scrollback).into())).await.is_err() {
            return terminal.detach(viewer.id);
        }
    }
    let mut paused = false;
    loop {
        tokio::select! {
            out = viewer.output.recv(), if !paused => match out {
                Some(Out::Data(bytes)) => {
                    if socket.send(Message::Binary(ttyd::frame(ttyd::OUTPUT, &bytes).into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Closed(why)) => {
                    terminal.detach(viewer.id);
                    return close(socket, 1000, why).await;
                }
                None => break,
            },
            message = socket.recv() => {
                let bytes = match message {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Text(text))) => Bytes::copy_from_slice(text.as_bytes()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    _ => break,
                };
                match ttyd::parse(&bytes) {
                    ttyd::ClientFrame::Input(input) if writable => {
                        app.terminals.touched(&student);
                        terminal.send(Control::Input(Bytes::copy_from_slice(input))).await;
                    }
                    ttyd::ClientFrame::Resize(size) if writable => terminal.send(Control::Resize(size.columns, size.rows)).await,
                    ttyd::ClientFrame::Pause => paused = true,
                    ttyd::ClientFrame::Resume => paused = false,
                    _ => {}
                }
            }
        }
    }
    terminal.detach(viewer.id);
}

fn truncate(text: &str) -> String {
    // A close frame's reason is at most 123 bytes.
    let mut end = text.len().min(120);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("alice"), "alice");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; sandbox_session=abc; b=2"));
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn an_origin_must_be_one_of_ours() {
        // As `sandbox serve --listen 127.0.0.1:8080 --origin https://class.example.org` makes them.
        let origins = ["https://class.example.org".to_string(), "http://127.0.0.1:8080".into(), "http://localhost:8080".into()];
        let with = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::ORIGIN, HeaderValue::from_static(value));
            }
            origin_allowed(&origins, &headers)
        };
        assert!(with(&[]), "curl and ttyd clients send none");
        assert!(with(&["http://127.0.0.1:8080"]));
        assert!(with(&["http://LOCALHOST:8080"]));
        assert!(with(&["https://class.example.org"]));
        assert!(!with(&["http://class.example.org"]), "another scheme is another origin");
        assert!(!with(&["http://127.0.0.1:8081"]), "another port is another origin");
        assert!(!with(&["https://class.example.org.evil.example"]));
        assert!(!with(&["null"]), "a sandboxed frame or a file:// page");
        assert!(!with(&["http://127.0.0.1:8080", "http://evil.example"]));
    }

    #[test]
    fn an_empty_cookie_is_no_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("sandbox_session="));
        assert_eq!(session_cookie(&headers), None);
    }
}
