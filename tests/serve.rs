//! `sandbox serve`: the ttyd protocol message by message, who may reach
//! which terminal, reconnecting, the teacher's view and dashboard, lab checks,
//! 30 terminals at once, a runaway `yes`, kill -9 and restart, TLS, ssh login,
//! guessing limited per address, the pages' policy headers and the Origin check.
//! Run as root under the shared lock: `flock /tmp/sandbox-itest.lock cargo test --test serve`.

mod serve_support;

use std::process::Stdio;

use serve_support::*;

fn ready(what: &str) -> bool {
    need_root(what) && need_tool("curl")
}

#[test]
fn the_ttyd_protocol_message_by_message() {
    if !ready("serve") {
        return;
    }
    let _one = serialize();
    let serve = Serve::start(&["srv-proto"], None, &[]);
    // The process that parses HTTP is not root and cannot become root again.
    // It drops before it serves: once it has answered, its ids are final
    // ("serving" is said when it is spawned, maybe before it ran a line).
    assert_eq!(status_and_body(&curl(&["-i", &format!("{}/", serve.base())])).0, 200);
    let web = serve.web_pid().expect("the web process");
    let status = std::fs::read_to_string(format!("/proc/{web}/status")).unwrap();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).unwrap().split_whitespace().skip(1).collect::<Vec<_>>().join(" ");
    assert_eq!(field("Uid:"), "65534 65534 65534 65534", "{status}");
    assert_eq!(field("Gid:"), "65534 65534 65534 65534", "{status}");
    assert_eq!(field("Groups:"), "");
    assert_eq!(field("CapEff:"), "0000000000000000");
    assert_eq!(field("CapPrm:"), "0000000000000000");
    assert_eq!(field("NoNewPrivs:"), "1");
    let token = serve.token("srv-proto");
    rt().block_on(async {
        // The hello with an AuthToken (no cookie): title, then preferences.
        let mut socket = connect(&serve.base(), "", None, None).await.unwrap();
        hello(&mut socket, &token, 91, 27).await;
        let (title, preferences) = greeting(&mut socket).await;
        assert_eq!(title, "srv-proto");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&preferences).unwrap()["disableStdin"], false);
        // '0' input, '0' output.
        input(&mut socket, "echo $((6*7))\r").await;
        until(&mut socket, "42").await;
        // The hello's size reached the pty; '1' resizes it.
        input(&mut socket, "tput lines; tput cols\r").await;
        until(&mut socket, "27\r\n91").await;
        send(&mut socket, b'1', br#"{"columns":120,"rows":40}"#).await;
        input(&mut socket, "tput lines; tput cols\r").await;
        until(&mut socket, "40\r\n120").await;
        // '2' pauses output, '3' resumes it: what was said meanwhile comes after.
        send(&mut socket, b'2', b"").await;
        input(&mut socket, "echo paused-$((1+1))\r").await;
        send(&mut socket, b'3', b"").await;
        until(&mut socket, "paused-2").await;
        // An unknown command byte is ignored, as ttyd does.
        send(&mut socket, b'9', b"whatever").await;
        input(&mut socket, "echo still-$((2+2))\r").await;
        until(&mut socket, "still-4").await;
    });
}

#[test]
fn a_bad_token_gets_nothing() {
    if !ready("serve") {
        return;
    }
    let _one = serialize();
    let serve = Serve::start(&["srv-bad"], None, &[]);
    let wrong = "0".repeat(64);
    // No cookie for a wrong token, and no page behind it.
    let response = curl(&["-i", &format!("{}/?token={wrong}", serve.base())]);
    let (status, _) = status_and_body(&response);
    assert_eq!(status, 403, "{response}");
    assert!(!response.to_ascii_lowercase().contains("set-cookie"), "{response}");
    assert_eq!(serve.get("/api/me", &wrong).0, 403);
    assert_eq!(serve.get("/api/class", "").0, 403);
    // The websocket closes with policy violation (1008) before any output.
    rt().block_on(async {
        let mut socket = connect(&serve.base(), "", None, None).await.unwrap();
        hello(&mut socket, &wrong, 80, 24).await;
        match next(&mut socket).await {
            Said::Closed(1008, _) => {}
            other => panic!("expected a close 1008, got {other:?}"),
        }
        // A cookie that is not a session, nor a token: the same.
        let mut socket = connect(&serve.base(), "", Some(&wrong), None).await.unwrap();
        hello(&mut socket, "", 80, 24).await;
        assert!(matches!(next(&mut socket).await, Said::Closed(1008, _)));
        // Another site's page cannot open a terminal even with a valid cookie.
        let cookie = serve.cookie("srv-bad");
        assert!(connect(&serve.base(), "", Some(&cookie), Some("http://evil.example")).await.is_err(), "another origin is refused");
        // Without the `tty` subprotocol the upgrade is refused.
        let url = format!("{}/ws", serve.base().replace("http://", "ws://"));
        assert!(tokio_tungstenite::connect_async(url).await.is_err());
    });
    // A new link for someone ends the sessions of the old one, in the running serve.
    let cookie = serve.cookie("srv-bad");
    assert_eq!(serve.get("/api/me", &cookie).0, 200);
    let _new_link = serve.link("srv-bad");
    assert_eq!(serve.get("/api/me", &cookie).0, 403, "the rotated token's session ended");
    // Tokens and cookies are never written to the log.
    let log = serve.stderr.lock().unwrap().clone();
    assert!(!log.contains(&wrong) && !log.contains(&cookie), "{log}");
    // Guessing is limited per address: after 20 failures in a minute, even a right token waits.
    // Each guess is another token (the same wrong one again is no new guess, and counts once).
    let fresh = serve.cookie("srv-bad");
    let guesses: Vec<String> = (1..=25).map(|n| format!("{n:064x}")).collect();
    let statuses: Vec<u16> = guesses.iter().map(|g| status_and_body(&curl(&["-i", &format!("{}/?token={g}", serve.base())])).0).collect();
    let first = statuses.iter().position(|s| *s == 429).unwrap_or_else(|| panic!("never blocked: {statuses:?}"));
    // Two failures came before (the wrong token, the rotated session's cookie).
    assert!((10..=20).contains(&first), "{statuses:?}");
    assert!(statuses[..first].iter().all(|s| *s == 403) && statuses[first..].iter().all(|s| *s == 429), "{statuses:?}");
    // A right cookie, a terminal, then a right token: 429 (or no upgrade), with Retry-After, no cookie.
    let (status, body) = serve.get("/api/me", &fresh);
    assert_eq!(status, 429, "{body}");
    rt().block_on(async {
        let refused = connect(&serve.base(), "", Some(&fresh), Some(&serve.base())).await;
        assert!(refused.as_ref().is_err_and(|e| e.contains("429")), "{:?}", refused.map(|_| ()));
    });
    let link = serve.link("srv-bad");
    let response = curl(&["-i", &link]);
    assert_eq!(status_and_body(&response).0, 429, "{response}");
    assert!(!response.to_ascii_lowercase().contains("set-cookie"), "{response}");
    let retry: u64 = header(&response, "retry-after").and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{response}"));
    assert!((1..=60).contains(&retry), "{response}");
    // Only this address: the same link from another loopback address logs in.
    let elsewhere = curl(&["-i", "--interface", "127.0.0.2", &link]);
    assert_eq!(status_and_body(&elsewhere).0, 200, "{elsewhere}");
    // One line for the blocked address; no token or cookie in the log.
    let log = serve.stderr.lock().unwrap().clone();
    assert_eq!(log.matches("is refused every login").count(), 1, "{log}");
    let token = link.rsplit_once("token=").unwrap().1;
    for secret in guesses.iter().map(String::as_str).chain([token, fresh.as_str()]) {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn pages_carry_a_policy_and_only_our_pages_may_change_anything() {
    if !ready("serve") {
        return;
    }
    let _one = serialize();
    // The name a reverse proxy gives the class (plain http: no Secure cookie expected).
    let proxied = "http://class.example.org";
    let serve = Serve::start(&["srv-head"], None, &["--origin", proxied]);
    // Every page: scripts only from this server, no framing, no referrer, not cached.
    let page = curl(&["-i", &format!("{}/", serve.base())]);
    assert_eq!(status_and_body(&page).0, 200, "{page}");
    let policy = header(&page, "content-security-policy").unwrap_or_else(|| panic!("no policy: {page}"));
    for part in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"] {
        assert!(policy.contains(part), "{part}: {policy}");
    }
    let scripts = policy.split(';').find(|d| d.trim().starts_with("script-src")).unwrap();
    assert!(!scripts.contains("unsafe"), "{policy}");
    assert_eq!(header(&page, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&page, "referrer-policy"), Some("no-referrer"));
    assert_eq!(header(&page, "cache-control"), Some("no-store"));
    // The cookie: not for scripts, not sent along from another site; Secure only with TLS
    // (the https test checks that one).
    let login = curl(&["-i", &serve.link("srv-head")]);
    assert!(header(&login, "content-security-policy").is_some(), "{login}");
    let cookie_line = header(&login, "set-cookie").unwrap_or_else(|| panic!("{login}"));
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie_line.contains(part), "{cookie_line}");
    }
    assert!(!cookie_line.contains("Secure"), "{cookie_line}");
    // A POST from another site's page is refused before anything is done, a valid cookie or not.
    let (student, teacher) = (serve.cookie("srv-head"), serve.cookie("teacher"));
    let evil = "http://evil.example";
    let (status, body) = serve.post_from("/api/act", &teacher, r#"{"action":"stop","student":"srv-head"}"#, evil);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("another site"), "{body}");
    assert!(exec("srv-head", "echo up").contains("up"), "the instance still runs");
    assert_eq!(serve.post_from("/api/check", &student, "{}", evil).0, 403);
    assert_eq!(serve.post_from("/api/logout", &student, "", evil).0, 403);
    assert_eq!(serve.get("/api/me", &student).0, 200, "the session was not ended from another site");
    // The same port by another scheme is another origin, and so is a name like ours.
    let https = format!("https://127.0.0.1:{}", serve.port);
    assert_eq!(serve.post_from("/api/logout", &student, "", &https).0, 403);
    assert_eq!(serve.post_from("/api/logout", &student, "", "http://class.example.org.evil.example").0, 403);
    assert_eq!(serve.get("/api/me", &student).0, 200);
    // Ours: the --origin, the listen address, and `localhost` for a loopback address.
    assert_eq!(serve.post_from("/api/logout", &student, "", proxied).0, 204);
    assert_eq!(serve.get("/api/me", &student).0, 403, "logged out");
    for ours in [serve.base(), format!("http://localhost:{}", serve.port)] {
        let student = serve.cookie("srv-head");
        assert_eq!(serve.post_from("/api/logout", &student, "", &ours).0, 204, "{ours}");
        assert_eq!(serve.get("/api/me", &student).0, 403, "logged out from {ours}");
    }
}

/// A header of a `curl -i` response.
fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    response
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

#[test]
fn alice_cannot_reach_bobs_terminal() {
    if !ready("serve") {
        return;
    }
    let _one = serialize();
    let serve = Serve::start(&["srv-alice", "srv-bob"], None, &[]);
    let alice = serve.cookie("srv-alice");
    let bob_token = serve.token("srv-bob");
    rt().block_on(async {
        // Her cookie with bob's name in the query: refused.
        let mut socket = connect(&serve.base(), "?student=srv-bob", Some(&alice), Some(&serve.base())).await.unwrap();
        hello(&mut socket, "", 80, 24).await;
        assert!(matches!(next(&mut socket).await, Said::Closed(1008, _)));
        // Her cookie with bob's token in the hello: the cookie decides, she gets her own shell.
        let mut socket = connect(&serve.base(), "", Some(&alice), Some(&serve.base())).await.unwrap();
        hello(&mut socket, &bob_token, 80, 24).await;
        greeting(&mut socket).await;
        input(&mut socket, "echo mine > ~/whose.txt; echo written-$((3*3))\r").await;
        until(&mut socket, "written-9").await;
    });
    assert_eq!(exec("srv-alice", "cat ~/whose.txt 2>&1"), "mine\n");
    assert!(!exec("srv-bob", "cat ~/whose.txt 2>&1").contains("mine"), "bob's instance is untouched");
    // The teacher's and other students' API is closed to her.
    assert_eq!(serve.get("/api/class", &alice).0, 403);
    assert_eq!(serve.post("/api/act", &alice, r#"{"action":"stop","student":"srv-bob"}"#).0, 403);
    assert_eq!(serve.post("/api/act", &alice, r#"{"action":"stop"}"#).0, 403);
    assert_eq!(serve.get("/api/grades.csv", &alice).0, 403);
    assert!(exec("srv-bob", "echo up").contains("up"), "bob's instance still runs");
}

#[test]
fn a_closed_tab_leaves_the_shell_and_reconnecting_reattaches() {
    if !ready("serve") {
        return;
    }
    let _one = serialize();
    let serve = Serve::start(&["srv-back"], None, &[]);
    let cookie = serve.cookie("srv-back");
    rt().block_on(async {
        let mut first = shell(&serve, &cookie, 0).await;
        input(&mut first, "MARK=kept-$((5*5)); echo before-$((2*3))\r").await;
        until(&mut first, "before-6").await;
        drop(first); // the tab closes, or the network goes
        let mut again = shell(&serve, &cookie, 0).await;
        // The scrollback comes first, then the same shell answers.
        until(&mut again, "before-6").await;
        input(&mut again, "echo $MARK\r").await;
        until(&mut again, "kept-25").await;
        // A second tab on the same shell sees what the first types.
        let mut other = shell(&serve, &cookie, 0).await;
        input(&mut again, "echo both-$((4*4))\r").await;
        until(&mut other, "both-16").await;
        // Another shell number is another shell.
        let mut second = shell(&serve, &cookie, 1).await;
        input(&mut second, "echo ${MARK:-unset}-here\r").await;
        until(&mut second, "unset-here").await;
    });
}

#[test]
fn the_teacher_watches_read_only_and_runs_the_class() {
    if !ready("serve") {
        return;
    }
    let _one = serialize();
    let serve = Serve::start(&["srv-watched", "srv-other"], Some("90-serve-hello"), &[]);
    let student = serve.cookie("srv-watched");
    let teacher = serve.cookie("teacher");
    rt().block_on(async {
        let mut own = shell(&serve, &student, 0).await;
        input(&mut own, "echo hi-$((7*3))\r").await;
        until(&mut own, "hi-21").await;
        let mut view = connect(&serve.base(), "?student=srv-watched", Some(&teacher), Some(&serve.base())).await.unwrap();
        hello(&mut view, "", 80, 24).await;
        let (title, preferences) = greeting(&mut view).await;
        assert!(title.contains("read-only"), "{title}");
        assert!(preferences.contains("\"disableStdin\":true"), "{preferences}");
        until(&mut view, "hi-21").await; // the scrollback
        // What the teacher types goes nowhere; what the student types shows.
        input(&mut view, "touch ~/teacher-was-here\r").await;
        input(&mut own, "ls ~/teacher-was-here 2>&1 | tr a-z A-Z; echo seen-$((8*8))\r").await;
        let seen = until(&mut view, "seen-64").await;
        assert!(seen.contains("NO SUCH FILE"), "{seen}");
        // The teacher has no shell of their own.
        let mut none = connect(&serve.base(), "", Some(&teacher), Some(&serve.base())).await.unwrap();
        hello(&mut none, "", 80, 24).await;
        assert!(matches!(next(&mut none).await, Said::Closed(1008, _)));
    });
    // The dashboard: every student, their state and usage; the shells open.
    let (status, body) = serve.get("/api/class", &teacher);
    assert_eq!(status, 200, "{body}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.len(), 2);
    let watched = rows.iter().find(|r| r["name"] == "srv-watched").unwrap();
    assert_eq!(watched["state"], "running", "{watched}");
    assert!(watched["memory_bytes"].as_u64().is_some() && watched["pids"].as_u64().is_some(), "{watched}");
    assert!(watched["last_activity"].as_u64().is_some(), "{watched}");
    assert_eq!(watched["shells"], serde_json::json!([0]));
    // A check by the student moves the teacher's table.
    exec("lab90-srv-watched", "echo hello > /home/student/hello.txt");
    let (status, body) = serve.post("/api/check", &student, "{}");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["passed"], true, "{report}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&serve.get("/api/class", &teacher).1).unwrap();
    let watched = rows.iter().find(|r| r["name"] == "srv-watched").unwrap();
    assert_eq!(watched["checks"]["hello-file"], true, "{watched}");
    // The teacher checks another student: not solved yet.
    let (_, body) = serve.post("/api/check", &teacher, r#"{"student":"srv-other"}"#);
    assert!(body.contains("\"passed\":false"), "{body}");
    // Grades.
    let (_, csv) = serve.get("/api/grades.csv", &teacher);
    assert!(csv.starts_with("student,hello-file,readme-kept,passed,total,checked_at\n"), "{csv}");
    assert!(csv.contains("srv-watched,1,1,2,2,"), "{csv}");
    assert!(csv.contains("srv-other,0,1,1,2,"), "{csv}");
    let (_, json) = serve.get("/api/grades.json", &teacher);
    assert!(json.contains("\"hello-file\":true"), "{json}");
    // A student outside the class is nobody to the teacher either.
    assert_eq!(serve.post("/api/check", &teacher, r#"{"student":"root"}"#).0, 403);
    // Stop, start and reset one student.
    let (status, body) = serve.post("/api/act", &teacher, r#"{"action":"stop","student":"srv-other"}"#);
    assert_eq!(status, 200, "{body}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&serve.get("/api/class", &teacher).1).unwrap();
    assert_eq!(rows.iter().find(|r| r["name"] == "srv-other").unwrap()["state"], "stopped");
    let (status, body) = serve.post("/api/act", &teacher, r#"{"action":"start","student":"srv-other"}"#);
    assert_eq!(status, 200, "{body}");
    let (status, body) = serve.post("/api/act", &teacher, r#"{"action":"reset","student":"srv-watched"}"#);
    assert_eq!(status, 200, "{body}");
    assert!(exec("lab90-srv-watched", "cat /home/student/hello.txt 2>&1").contains("No such file"), "reset dropped the work");
    assert!(exec("lab90-srv-watched", "cat /home/student/README.txt").contains("hello"), "and placed the lab's files again");
}

#[test]
fn thirty_terminals_at_once_answer_with_bounded_memory() {
    if !ready("serve") {
        return;
    }
    let _one = serialize();
    let names: Vec<String> = (0..30).map(|i| format!("srv-c{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let serve = Serve::start(&refs, None, &[]);
    let cookies: Vec<String> = names.iter().map(|n| serve.cookie(n)).collect();
    rt().block_on(async {
        let mut tasks = Vec::new();
        for (i, cookie) in cookies.iter().enumerate() {
            let (base, cookie) = (serve.base(), cookie.clone());
            tasks.push(tokio::spawn(async move {
                let mut socket = connect(&base, "", Some(&cookie), Some(&base)).await.unwrap();
                hello(&mut socket, "", 80, 24).await;
                greeting(&mut socket).await;
                // Everyone types at once, and everyone makes a lot of output.
                input(&mut socket, &format!("seq 1 200000; echo answer-$(({i}*1000+7))\r")).await;
                until(&mut socket, &format!("answer-{}", i * 1000 + 7)).await;
                socket
            }));
        }
        let mut sockets = Vec::new();
        for task in tasks {
            sockets.push(task.await.unwrap());
        }
        let web = serve.web_pid().expect("the web process");
        let rss = rss(web);
        eprintln!("web process: {} MiB resident with 30 terminals", rss >> 20);
        assert!(rss < 200 << 20, "the web process holds {} MiB", rss >> 20);
    });
}

#[test]
fn a_runaway_yes_does_not_stall_another_student() {
    if !ready("serve") {
        return;
    }
    let _one = serialize();
    let serve = Serve::start(&["srv-yes", "srv-calm"], None, &[]);
    let (yes, calm) = (serve.cookie("srv-yes"), serve.cookie("srv-calm"));
    rt().block_on(async {
        let mut flood = shell(&serve, &yes, 0).await;
        input(&mut flood, "yes\r").await;
        until(&mut flood, "y\r\ny\r\ny").await;
        // A viewer that stops reading: its queue fills, it is let go, and
        // neither the shell nor the server waits for it.
        let mut stalled = shell(&serve, &yes, 0).await;
        send(&mut stalled, b'2', b"").await;
        let mut other = shell(&serve, &calm, 0).await;
        for n in 0..5 {
            input(&mut other, &format!("echo calm-$(({n}+100))\r")).await;
            until(&mut other, &format!("calm-{}", n + 100)).await;
        }
        input(&mut flood, "\x03").await;
        drop(stalled);
    });
    let web = serve.web_pid().expect("the web process");
    assert!(rss(web) < 100 << 20, "{} MiB", rss(web) >> 20);
}

#[test]
fn kill_9_of_serve_keeps_the_instances_and_a_new_serve_adopts_them() {
    if !ready("serve") {
        return;
    }
    let _one = serialize();
    let mut serve = Serve::start(&["srv-kept"], None, &[]);
    let cookie = serve.cookie("srv-kept");
    rt().block_on(async {
        let mut socket = shell(&serve, &cookie, 0).await;
        input(&mut socket, "echo work > ~/work.txt; echo saved-$((9*9))\r").await;
        until(&mut socket, "saved-81").await;
    });
    let web = serve.web_pid().unwrap();
    serve.kill9();
    // The web process goes with it; the instance stays.
    let gone = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        !std::path::Path::new(&format!("/proc/{web}")).exists()
            || std::fs::read_to_string(format!("/proc/{web}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
    assert!(gone, "the web process ended with serve");
    let ps: Vec<serde_json::Value> = serde_json::from_str(&ok(sandbox().args(["ps", "--json"]))).unwrap();
    assert_eq!(ps.iter().find(|r| r["name"] == "srv-kept").unwrap()["state"], "running");
    serve.restart();
    assert!(serve.stderr.lock().unwrap().contains("every instance was running"), "{}", serve.stderr.lock().unwrap());
    // The session from before still works, and the student's work is there.
    rt().block_on(async {
        let mut socket = shell(&serve, &cookie, 0).await;
        input(&mut socket, "cat ~/work.txt; echo back-$((6*6))\r").await;
        let seen = until(&mut socket, "back-36").await;
        assert!(seen.contains("work"), "{seen}");
    });
}

#[test]
fn https_with_a_certificate_and_a_secure_cookie() {
    if !ready("serve") || !need_tool("openssl") {
        return;
    }
    let _one = serialize();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    let tls = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    let serve = Serve::start(&["srv-tls"], None, &tls);
    let link = ok(sandbox().args(["serve", "tokens", "--rotate", "srv-tls"]));
    let url = link.split_whitespace().nth(1).unwrap();
    assert!(url.starts_with(&format!("https://127.0.0.1:{}/?token=", serve.port)), "{url}");
    let response = curl(&["-i", "--cacert", cert.to_str().unwrap(), url]);
    assert_eq!(status_and_body(&response).0, 200, "{response}");
    let cookie_line = response.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie_line.contains(part), "{cookie_line}");
    }
    // Plain HTTP to the TLS port gets no page.
    let plain = curl(&["-i", &format!("http://127.0.0.1:{}/", serve.port)]);
    assert!(!plain.contains("200 OK"), "{plain}");
}

#[test]
fn ssh_login_puts_the_user_in_their_own_instance_only() {
    if !ready("serve") {
        return;
    }
    let _one = serialize();
    // `daemon` is a system user on every Debian machine: the student here.
    for mode in [&[][..], &["--ssh-only"][..]] {
        login_as_daemon(mode);
    }
}

fn login_as_daemon(mode: &[&str]) {
    let serve = Serve::start(&["daemon"], None, mode);
    if !mode.is_empty() {
        let taken = std::net::TcpStream::connect(("127.0.0.1", serve.port));
        assert!(taken.is_err(), "--ssh-only listens on no port");
    }
    let login = |uid: u32| {
        use std::os::unix::process::CommandExt;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sandbox"));
        command.arg("login").env("SANDBOX_LOGIN_SOCKET", &serve.socket).uid(uid).gid(uid).stdin(Stdio::piped()).stdout(Stdio::piped());
        command.stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"echo in-$(uname -n)-$((6*7))\nexit 3\n").unwrap();
        child.wait_with_output().unwrap()
    };
    let output = login(1);
    let text = stdout(&output);
    assert!(text.contains("in-") && text.contains("-42"), "{text}\n{}", stderr(&output));
    assert_eq!(output.status.code(), Some(3), "the shell's exit status is login's");
    // `bin` (uid 2) is no student of this class: nothing.
    let refused = login(2);
    assert_eq!(refused.status.code(), Some(125));
    assert!(stderr(&refused).contains("not a student"), "{}", stderr(&refused));
}
