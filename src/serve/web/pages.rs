//! The pages and their files, embedded in the binary (assets/serve/).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// (name, content type, bytes). xterm.js and its fit addon are vendored from
/// the npm registry (assets/serve/vendor/VERSIONS names the versions).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../../assets/serve/app.css")),
    ("terminal.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/serve/terminal.js")),
    ("student.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/serve/student.js")),
    ("teacher.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/serve/teacher.js")),
    ("login.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/serve/login.js")),
    ("xterm.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/serve/vendor/xterm.js")),
    ("xterm.css", "text/css; charset=utf-8", include_bytes!("../../../assets/serve/vendor/xterm.css")),
    ("addon-fit.js", "text/javascript; charset=utf-8", include_bytes!("../../../assets/serve/vendor/addon-fit.js")),
];

const STUDENT: &str = include_str!("../../../assets/serve/student.html");
const TEACHER: &str = include_str!("../../../assets/serve/teacher.html");
const LOGIN: &str = include_str!("../../../assets/serve/login.html");

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, bytes)) => {
            let mut response = bytes.into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
            response
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub fn page(which: &str) -> Response {
    let html = match which {
        "teacher" => TEACHER,
        "student" => STUDENT,
        _ => LOGIN,
    };
    Html(html).into_response()
}

/// A page that goes on to `/` (where the new cookie is sent).
pub fn logged_in() -> Response {
    Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url=/\">\
         <title>Logged in</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body><main class=\"narrow\"><p>Logged in. <a href=\"/\">Continue</a></p></main></body></html>",
    )
    .into_response()
}

pub fn message(status: StatusCode, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sandbox</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main class=\"narrow\"><p>{}</p>\
         <p><a href=\"/\">Back</a></p></main></body></html>",
        escape_html(text)
    );
    (status, Html(body)).into_response()
}

pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_is_escaped() {
        assert_eq!(super::escape_html("<script>\"&'"), "&lt;script&gt;&quot;&amp;&#39;");
    }
}
