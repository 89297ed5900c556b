//! Language runtime components, built from `runtimes/` by this crate's `build.rs` and
//! embedded in the binary, so a `wasmwhisk` executable needs no other file.

use crate::action::ActionKind;

/// QuickJS compiled to a component implementing the `runtime` world.
pub const JS_RUNTIME: &[u8] = include_bytes!(concat!(
    env!("WASMWHISK_RUNTIMES"),
    "/wasmwhisk_js_runtime.wasm"
));

/// The runtime component of `kind`, if it is a runtime kind.
pub fn component(kind: ActionKind) -> Option<&'static [u8]> {
    match kind {
        ActionKind::Js => Some(JS_RUNTIME),
        ActionKind::Wasm => None,
    }
}

/// What runs an action: a Wasm sandbox of a kind, or a Docker container of
/// an image (the fallback for kinds with no Wasm runtime).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A Wasm sandbox: a `wasm` component or a stem cell of a runtime.
    Wasm(ActionKind),
    /// A Docker container of `image`, speaking OpenWhisk's `/init`/`/run`.
    Docker {
        /// The image.
        image: String,
    },
}

/// The backend of an action of `kind` (with `image` for `blackbox`), given
/// the image kinds (kind → image): a Wasm kind first, then `blackbox` with
/// its own image, then the manifest's image kinds. `None`: nothing runs it.
pub fn backend(
    kind: &str,
    image: Option<&str>,
    images: &std::collections::BTreeMap<String, String>,
) -> Option<Backend> {
    if let Ok(kind) = kind.parse::<ActionKind>() {
        return Some(Backend::Wasm(kind));
    }
    if kind == wasmwhisk_protocol::BLACKBOX_KIND {
        return image
            .filter(|i| !i.trim().is_empty())
            .map(|image| Backend::Docker {
                image: image.to_string(),
            });
    }
    images.get(kind).map(|image| Backend::Docker {
        image: image.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_kinds_win_then_blackbox_then_images() {
        let mut images = std::collections::BTreeMap::new();
        images.insert("native".to_string(), "proxy:1".to_string());
        assert_eq!(
            backend("nodejs:20", None, &images),
            Some(Backend::Wasm(ActionKind::Js))
        );
        assert_eq!(
            backend("blackbox", Some("me/act:1"), &images),
            Some(Backend::Docker {
                image: "me/act:1".into()
            })
        );
        assert_eq!(backend("blackbox", None, &images), None);
        assert_eq!(
            backend("native", None, &images),
            Some(Backend::Docker {
                image: "proxy:1".into()
            })
        );
        assert_eq!(backend("python:3", None, &images), None);
    }
}
