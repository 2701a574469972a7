//! An interactive terminal: xterm.js on an exec WebSocket (a tty), resized with the window.

use berth_types::StreamControl;
use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::client::api::{self, enc};
use crate::client::ws::{Frame, Socket};
use crate::components::xterm;

#[component]
pub fn Terminal(name: String, command: String) -> impl IntoView {
    let holder = NodeRef::<html::Div>::new();
    let status = RwSignal::new(String::from("Connecting…"));
    let ended = RwSignal::new(false);
    let keep = StoredValue::new_local(None::<(xterm::Terminal, Socket, Closure<dyn FnMut(String)>)>);
    let words = match crate::forms::split_words(&command) {
        Ok(w) if !w.is_empty() => w,
        _ => vec!["sh".to_owned()],
    };
    let query: String = words.iter().map(|w| format!("cmd={}&", enc(w))).collect();
    let path = format!("/api/v1/containers/{}/exec?{query}tty=1&stdin=1", enc(&name));
    holder.on_load(move |element| {
        if !xterm::available() {
            status.set("The terminal script (xterm.js) did not load.".into());
            return;
        }
        let options = js_sys::Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = js_sys::Reflect::set(&options, &JsValue::from_str(k), &v);
        };
        set("cursorBlink", JsValue::TRUE);
        set("fontSize", JsValue::from_f64(14.0));
        set("fontFamily", JsValue::from_str("ui-monospace, Menlo, Consolas, \"Liberation Mono\", monospace"));
        set("convertEol", JsValue::FALSE);
        let term = match xterm::Terminal::new(&options) {
            Ok(t) => t,
            Err(e) => {
                status.set(format!("Cannot start the terminal: {}", api::js_text(&e)));
                return;
            }
        };
        let element: web_sys::HtmlElement = (*element).clone().unchecked_into();
        term.open(&element);
        let (cols, rows) = fit(&element);
        term.resize(cols, rows);
        let term_out = term.clone().unchecked_into::<xterm::Terminal>();
        let term_end = term.clone().unchecked_into::<xterm::Terminal>();
        let socket = Socket::open(
            &path,
            Some(Box::new(move |ws| {
                status.set("Connected".into());
                let resize = serde_json::to_string(&StreamControl::Resize { cols, rows }).unwrap_or_default();
                let _ = ws.send_with_str(&resize);
            })),
            move |frame| match frame {
                Frame::Binary(bytes) => term_out.write_bytes(&js_sys::Uint8Array::from(bytes.as_slice())),
                Frame::Text(text) => match serde_json::from_str::<StreamControl>(&text) {
                    Ok(StreamControl::Exit { code }) => {
                        ended.set(true);
                        term_out.write_str(&format!("\r\n\x1b[33m[session ended: exit code {code}]\x1b[0m\r\n"));
                        status.set(format!("Session ended (exit code {code}). If the container stopped, the shell ended with it."));
                    }
                    Ok(StreamControl::Error { message }) => {
                        ended.set(true);
                        term_out.write_str(&format!("\r\n\x1b[31m[{message}]\x1b[0m\r\n"));
                        status.set(format!("Session failed: {message}"));
                    }
                    _ => {}
                },
            },
            move |closed| {
                if !ended.get_untracked() {
                    ended.set(true);
                    let why = if closed.code == 1000 { "closed".to_owned() } else { format!("lost (code {})", closed.code) };
                    term_end.write_str(&format!("\r\n\x1b[33m[connection {why}]\x1b[0m\r\n"));
                    status.set(format!("Connection {why}."));
                }
            },
        );
        let socket = match socket {
            Ok(s) => s,
            Err(e) => {
                status.set(format!("Cannot connect: {e}"));
                return;
            }
        };
        // Keystrokes and pastes go to the process as they are.
        let sender = socket_sender(&socket);
        let on_data = Closure::<dyn FnMut(String)>::new(move |data: String| {
            if !ended.get_untracked() {
                sender(data.as_bytes());
            }
        });
        term.on_data(&on_data);
        term.focus();
        keep.set_value(Some((term, socket, on_data)));
    });
    // A new window size gives the terminal a new size, and the process a SIGWINCH.
    let on_resize = window_event_listener(leptos::ev::resize, move |_| {
        let Some(element) = holder.get_untracked() else { return };
        let element: web_sys::HtmlElement = element.unchecked_into();
        let (cols, rows) = fit(&element);
        keep.with_value(|k| {
            if let Some((term, socket, _)) = k {
                if term.cols() != cols || term.rows() != rows {
                    term.resize(cols, rows);
                    socket.send_text(
                        &serde_json::to_string(&StreamControl::Resize { cols, rows }).unwrap_or_default(),
                    );
                }
            }
        });
    });
    on_cleanup(move || on_resize.remove());
    let copy = move |_| {
        keep.with_value(|k| {
            if let Some((term, _, _)) = k {
                if term.has_selection() {
                    copy_to_clipboard(&term.get_selection());
                }
                term.focus();
            }
        })
    };
    view! {
        <div class="terminal-bar">
            <span role="status" data-test="terminal-status">{move || status.get()}</span>
            <button type="button" class="button small" on:click=copy>"Copy selection"</button>
        </div>
        <div class="terminal" node_ref=holder data-test="terminal"></div>
        <p class="hint">"Paste with Ctrl+V (⌘V); select text and use Copy selection to copy."</p>
    }
}

/// A function that sends bytes on `socket`'s WebSocket (the closure keeps its own handle).
fn socket_sender(socket: &Socket) -> impl Fn(&[u8]) {
    let ws = socket.raw();
    move |bytes| {
        let _ = ws.send_with_u8_array(bytes);
    }
}

/// Columns and rows that fill `element` at the terminal's font size (about 8.4 × 17 px a cell).
fn fit(element: &web_sys::HtmlElement) -> (u16, u16) {
    let width = f64::from(element.client_width()).max(320.0);
    let cols = ((width - 16.0) / 8.43).floor().clamp(20.0, 400.0) as u16;
    (cols, 24)
}

/// Writes `text` to the clipboard (navigator.clipboard; quietly nothing where it is absent).
fn copy_to_clipboard(text: &str) {
    let navigator = window().navigator();
    if let Ok(clipboard) = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard")) {
        if let Ok(write) = js_sys::Reflect::get(&clipboard, &JsValue::from_str("writeText")) {
            if let Some(write) = write.dyn_ref::<js_sys::Function>() {
                let _ = write.call1(&clipboard, &JsValue::from_str(text));
            }
        }
    }
}
