//! Bindings to xterm.js (`@xterm/xterm` from npm, bundled by Trunk as a classic script that
//! sets `globalThis.Terminal`; see index.html).

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// An xterm.js terminal.
    pub type Terminal;

    #[wasm_bindgen(constructor, js_class = "Terminal", catch)]
    pub fn new(options: &JsValue) -> Result<Terminal, JsValue>;

    /// Draws the terminal into `parent`.
    #[wasm_bindgen(method)]
    pub fn open(this: &Terminal, parent: &web_sys::HtmlElement);

    #[wasm_bindgen(method, js_name = write)]
    pub fn write_str(this: &Terminal, data: &str);

    /// Takes a `Uint8Array` of its own: xterm.js parses written data later, so a view into
    /// the wasm memory (what a `&[u8]` becomes) could be overwritten before it is read.
    #[wasm_bindgen(method, js_name = write)]
    pub fn write_bytes(this: &Terminal, data: &js_sys::Uint8Array);

    #[wasm_bindgen(method)]
    pub fn focus(this: &Terminal);

    #[wasm_bindgen(method)]
    pub fn resize(this: &Terminal, cols: u16, rows: u16);

    #[wasm_bindgen(method)]
    pub fn dispose(this: &Terminal);

    #[wasm_bindgen(method, getter)]
    pub fn cols(this: &Terminal) -> u16;

    #[wasm_bindgen(method, getter)]
    pub fn rows(this: &Terminal) -> u16;

    /// What the user types (and pastes), as a string; returns a disposable.
    #[wasm_bindgen(method, js_name = onData)]
    pub fn on_data(this: &Terminal, callback: &Closure<dyn FnMut(String)>) -> JsValue;

    /// Selected text, for copy.
    #[wasm_bindgen(method, js_name = getSelection)]
    pub fn get_selection(this: &Terminal) -> String;

    #[wasm_bindgen(method, js_name = hasSelection)]
    pub fn has_selection(this: &Terminal) -> bool;
}

/// Whether the xterm.js script loaded (it is a separate file; a blocked one should give a
/// message, not a panic).
pub fn available() -> bool {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("Terminal")).is_ok_and(|t| t.is_function())
}
