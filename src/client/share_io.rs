//! Browser only (hydrate): the two browser APIs tabs share a stream with — a Web Lock (who
//! leads, where the page has one) and a `BroadcastChannel` (what the leader says; without Web
//! Locks, also who leads). Thin bindings, no decisions: those are
//! in `tabs.rs`. `navigator.locks` is bound by hand (web-sys keeps it behind
//! `--cfg=web_sys_unstable_apis`, a global flag for one method).

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, BroadcastChannel};

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks`.
    #[derive(Clone)]
    pub type LockManager;

    /// `locks.request(name, options, callback)`: the promise settles when the lock is released
    /// (fulfilled) or stolen / the request aborted (rejected).
    #[wasm_bindgen(method, js_name = request)]
    fn request_with_options(
        this: &LockManager,
        name: &str,
        options: &js_sys::Object,
        callback: &js_sys::Function,
    ) -> js_sys::Promise;
}

/// This browser has `BroadcastChannel` (every engine since 2022, insecure origins included).
pub fn has_channel() -> bool {
    web_sys::window().is_some_and(|w| {
        js_sys::Reflect::get(&w, &"BroadcastChannel".into()).is_ok_and(|c| c.is_function())
    })
}

/// `navigator.locks`, if this page has it (secure contexts only: not on a plain-HTTP host name).
pub fn locks() -> Option<LockManager> {
    let window = web_sys::window()?;
    let locks = js_sys::Reflect::get(&window.navigator(), &"locks".into()).ok()?;
    let has_request =
        js_sys::Reflect::get(&locks, &"request".into()).is_ok_and(|r| r.is_function());
    has_request.then(|| locks.unchecked_into())
}

/// One request for the exclusive lock `name`. `on_granted` runs when the lock is ours and
/// returns the promise that holds it (never settling until we let go); the returned promise
/// settles when the request ends (rejected: stolen or aborted).
pub fn request(
    locks: &LockManager,
    name: &str,
    steal: bool,
    signal: Option<&web_sys::AbortSignal>,
    on_granted: impl FnOnce() -> js_sys::Promise + 'static,
) -> js_sys::Promise {
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"mode".into(), &"exclusive".into());
    if steal {
        let _ = js_sys::Reflect::set(&options, &"steal".into(), &true.into());
    }
    if let Some(signal) = signal {
        let _ = js_sys::Reflect::set(&options, &"signal".into(), signal);
    }
    let callback = Closure::once_into_js(move |_lock: JsValue| -> JsValue { on_granted().into() });
    locks.request_with_options(name, &options, callback.unchecked_ref())
}

/// A promise that stays pending until `release` is called (the lock's lifetime).
pub fn hold() -> (js_sys::Promise, js_sys::Function) {
    let mut release = None;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| release = Some(resolve));
    let release = release.unwrap_or_else(|| js_sys::Function::new_no_args(""));
    (promise, release)
}

/// A fresh abort controller for a queued (non-stealing) request.
pub fn abort_controller() -> Option<AbortController> {
    AbortController::new().ok()
}

/// Open the channel `name`.
pub fn channel(name: &str) -> Option<BroadcastChannel> {
    BroadcastChannel::new(name).ok()
}
