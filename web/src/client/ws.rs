//! WebSockets to the daemon: events, logs, stats, pull/push progress and exec. A [`Socket`]
//! closes itself when dropped, so a page keeps it in a `StoredValue` and leaving the page ends
//! the stream; nothing polls.

use std::collections::VecDeque;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// A message from the daemon.
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// How a socket ended.
pub struct Closed {
    /// 1000 for a normal close; 1006 when the connection broke (or was refused).
    pub code: u16,
    pub reason: String,
}

/// Runs once the socket is open, to send a first message.
pub type OnOpen = Box<dyn FnOnce(&WebSocket)>;

type Handlers =
    (Closure<dyn FnMut(MessageEvent)>, Closure<dyn FnMut(CloseEvent)>, Option<Closure<dyn FnMut(JsValue)>>);

/// An open WebSocket with its handlers.
pub struct Socket {
    ws: WebSocket,
    _handlers: Handlers,
}

/// `ws://` or `wss://` URL of an API path on the page's own origin.
pub fn url(path: &str) -> String {
    let location = web_sys::window().map(|w| w.location());
    let (protocol, host) = location
        .map(|l| (l.protocol().unwrap_or_default(), l.host().unwrap_or_default()))
        .unwrap_or_default();
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    format!("{scheme}://{host}{path}")
}

impl Socket {
    /// Opens `path`; `on_open` runs once connected (to send a first message), `on_frame` for
    /// every message and `on_close` once at the end.
    pub fn open(
        path: &str,
        on_open: Option<OnOpen>,
        mut on_frame: impl FnMut(Frame) + 'static,
        on_close: impl FnOnce(Closed) + 'static,
    ) -> Result<Socket, String> {
        let ws = WebSocket::new(&url(path)).map_err(|e| crate::client::api::js_text(&e))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let data = event.data();
            if let Some(text) = data.as_string() {
                on_frame(Frame::Text(text));
            } else if let Some(buffer) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                on_frame(Frame::Binary(js_sys::Uint8Array::new(buffer).to_vec()));
            }
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let mut on_close = Some(on_close);
        let on_close_handler = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            if let Some(callback) = on_close.take() {
                callback(Closed { code: event.code(), reason: event.reason() });
            }
        });
        ws.set_onclose(Some(on_close_handler.as_ref().unchecked_ref()));
        let on_open_handler = on_open.map(|callback| {
            let socket = ws.clone();
            let mut callback = Some(callback);
            let handler = Closure::<dyn FnMut(JsValue)>::new(move |_| {
                if let Some(callback) = callback.take() {
                    callback(&socket);
                }
            });
            ws.set_onopen(Some(handler.as_ref().unchecked_ref()));
            handler
        });
        Ok(Socket { ws, _handlers: (on_message, on_close_handler, on_open_handler) })
    }

    /// Sends a text frame (dropped if the socket is not open).
    pub fn send_text(&self, text: &str) {
        let _ = self.ws.send_with_str(text);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // The page is going away or restarting the stream: no handler may run after this.
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onopen(None);
        let _ = self.ws.close();
    }
}

impl Socket {
    /// The browser's WebSocket, for a sender that outlives a borrow of this value.
    pub fn raw(&self) -> WebSocket {
        self.ws.clone()
    }
}

/// Appends streamed log lines to `lines`, numbered on from `next` (stable keys for `<For>`),
/// and drops the oldest beyond `max`.
pub fn append_numbered<T>(lines: &mut VecDeque<(u64, T)>, next: &mut u64, batch: Vec<T>, max: usize) {
    for line in batch {
        lines.push_back((*next, line));
        *next += 1;
    }
    while lines.len() > max {
        lines.pop_front();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbered_lines_keep_the_newest() {
        let mut lines = std::collections::VecDeque::new();
        let mut next = 0;
        super::append_numbered(&mut lines, &mut next, vec!["a", "b", "c"], 2);
        super::append_numbered(&mut lines, &mut next, vec!["d"], 2);
        assert_eq!(lines, [(2, "c"), (3, "d")]);
        assert_eq!(next, 4);
    }
}
