//! Both sides (feature `app`): the dashboard's demo actions — sign in, sign out, publish — as a
//! `fetch` in the browser. The server never runs them (they are click handlers).

/// `POST` `body` (JSON) to `url`; reload the page afterwards when `reload` (a sign-in or
/// sign-out changes what the server renders: the subject and the topics).
#[cfg(feature = "browser")]
pub(crate) fn post_json(url: &'static str, body: String, reload: bool) {
    use wasm_bindgen::JsValue;
    use wasm_bindgen_futures::JsFuture;

    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    let headers = js_sys::Object::new();
    let _ = js_sys::Reflect::set(
        &headers,
        &JsValue::from_str("content-type"),
        &JsValue::from_str("application/json"),
    );
    init.set_headers(&headers);
    let window = leptos::prelude::window();
    let request = window.fetch_with_str_and_init(url, &init);
    leptos::task::spawn_local(async move {
        if let Err(err) = JsFuture::from(request).await {
            leptos::logging::warn!("{url}: {err:?}");
        }
        if reload {
            let _ = leptos::prelude::window().location().reload();
        }
    });
}

/// Never called outside a browser.
#[cfg(not(feature = "browser"))]
pub(crate) fn post_json(_url: &'static str, _body: String, _reload: bool) {}
