//! The entry point Trunk builds into the page.

#[cfg(target_arch = "wasm32")]
fn main() {
    yew::Renderer::<bitmesh_web::app::App>::new().render();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("bitmesh-web runs in a browser: build it with `scripts/run.sh` or `trunk build`");
    std::process::exit(2);
}
