//! ttyd's websocket protocol (subprotocol `tty`), as its server and its
//! xterm.js client speak it: every frame starts with one command byte.
//!
//! ```text
//! client -> server   '{' + {"AuthToken": "...", "columns": C, "rows": R}   first, once
//!                    '0' + input bytes
//!                    '1' + {"columns": C, "rows": R}
//!                    '2' pause output      '3' resume output
//! server -> client   '0' + output bytes
//!                    '1' + window title    '2' + preferences (JSON)
//! ```

use serde::Deserialize;

pub const PROTOCOL: &str = "tty";

pub const OUTPUT: u8 = b'0';
pub const SET_WINDOW_TITLE: u8 = b'1';
pub const SET_PREFERENCES: u8 = b'2';

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Hello {
    #[serde(rename = "AuthToken", default)]
    pub auth_token: Option<String>,
    #[serde(default)]
    pub columns: u16,
    #[serde(default)]
    pub rows: u16,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct Size {
    pub columns: u16,
    pub rows: u16,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    Hello(Hello),
    Input(&'a [u8]),
    Resize(Size),
    Pause,
    Resume,
    /// A frame this server does not know, or a malformed one: ignored, as ttyd does.
    Unknown,
}

pub fn parse(frame: &[u8]) -> ClientFrame<'_> {
    match frame.split_first() {
        Some((b'0', input)) => ClientFrame::Input(input),
        Some((b'1', json)) => serde_json::from_slice(json).map(ClientFrame::Resize).unwrap_or(ClientFrame::Unknown),
        Some((b'2', _)) => ClientFrame::Pause,
        Some((b'3', _)) => ClientFrame::Resume,
        Some((b'{', _)) => serde_json::from_slice(frame).map(ClientFrame::Hello).unwrap_or(ClientFrame::Unknown),
        _ => ClientFrame::Unknown,
    }
}

/// A server frame: the command byte, then the payload.
pub fn frame(command: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(payload.len() + 1);
    bytes.push(command);
    bytes.extend_from_slice(payload);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_frame_parses() {
        assert_eq!(
            parse(br#"{"AuthToken":"t","columns":100,"rows":30}"#),
            ClientFrame::Hello(Hello { auth_token: Some("t".into()), columns: 100, rows: 30 })
        );
        assert_eq!(parse(br#"{"columns":80,"rows":24}"#), ClientFrame::Hello(Hello { auth_token: None, columns: 80, rows: 24 }));
        assert_eq!(parse(b"0ls\r"), ClientFrame::Input(b"ls\r"));
        assert_eq!(parse(br#"1{"columns":120,"rows":40}"#), ClientFrame::Resize(Size { columns: 120, rows: 40 }));
        assert_eq!(parse(b"2"), ClientFrame::Pause);
        assert_eq!(parse(b"3"), ClientFrame::Resume);
        for junk in [&b""[..], b"9", b"1{bad", b"{not json"] {
            assert_eq!(parse(junk), ClientFrame::Unknown, "{junk:?}");
        }
        assert_eq!(frame(OUTPUT, b"hi"), b"0hi");
    }
}
