//! What the Docker side needs before it starts: the action-proxy image and
//! hello-rust's native executable. There is no registry to pull from, so
//! both are built locally, by the repository's own scripts:
//!
//! - `runtimes/docker/build.sh` builds `wasmwhisk/action-proxy:latest`;
//! - `runtimes/docker/build-action.sh hello-rust <tag>` builds the native
//!   executable (static) and prints its path (it also builds a blackbox
//!   image, which the bench does not use and removes at once).
//!
//! When the image is missing and the script is found in the current
//! directory (the repository's root), the bench runs it; otherwise it stops
//! and names the command to run. The executable is built the same way
//! unless `--native FILE` names one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::daemon::Daemon;
use wasmwhisk_docker::Docker;

/// The image the containers run.
pub(crate) const PROXY_IMAGE: &str = "wasmwhisk/action-proxy:latest";
/// The script that builds it.
const BUILD_PROXY: &str = "runtimes/docker/build.sh";
/// The script that builds an action's native executable (and image).
const BUILD_ACTION: &str = "runtimes/docker/build-action.sh";
/// The tag `build-action.sh` is given; the image is removed afterwards.
const SCRATCH_TAG: &str = "wasmwhisk/bench-hello-rust:scratch";

/// The Docker side's action.
pub(crate) struct Native {
    /// The image containers run.
    pub image: String,
    /// The native executable, `/init`'s binary code.
    pub code: Vec<u8>,
    /// Its size, bytes.
    pub size: usize,
}

/// Makes sure the image exists and reads the native executable, building
/// what is missing when allowed and possible.
pub(crate) fn prepare(
    runtime: &tokio::runtime::Runtime,
    docker: &Docker,
    daemon: &Daemon,
    native: Option<&Path>,
) -> Result<Native> {
    if !runtime.block_on(docker.image_exists(PROXY_IMAGE))? {
        if !Path::new(BUILD_PROXY).is_file() {
            bail!(
                "the Docker image {PROXY_IMAGE} is missing: build it with `{BUILD_PROXY}` \
                 (or `make docker-image`) from the root of the wasmwhisk repository, \
                 then run the bench again"
            );
        }
        eprintln!("{PROXY_IMAGE} is missing: running {BUILD_PROXY}");
        script(BUILD_PROXY, &[])?;
        if !runtime.block_on(docker.image_exists(PROXY_IMAGE))? {
            bail!("{BUILD_PROXY} ran but the image {PROXY_IMAGE} is still missing");
        }
    }
    let path = match native {
        Some(path) => path.to_path_buf(),
        None => native_executable(runtime, daemon)?,
    };
    let code = std::fs::read(&path)
        .with_context(|| format!("reading the native executable {}", path.display()))?;
    Ok(Native {
        image: PROXY_IMAGE.to_string(),
        size: code.len(),
        code,
    })
}

/// hello-rust's native executable: built by `build-action.sh` when the
/// script is here (cargo makes that quick when nothing changed).
fn native_executable(runtime: &tokio::runtime::Runtime, daemon: &Daemon) -> Result<PathBuf> {
    if !Path::new(BUILD_ACTION).is_file() {
        bail!(
            "hello-rust's native executable is needed: run the bench from the root of the \
             wasmwhisk repository (it runs `{BUILD_ACTION} hello-rust <tag>`), or name a static \
             build of examples/hello-rust with --native FILE"
        );
    }
    eprintln!("building hello-rust's native executable ({BUILD_ACTION})");
    let out = script(BUILD_ACTION, &["hello-rust", SCRATCH_TAG])?;
    // The blackbox image it also built is not used.
    if let Err(error) = runtime.block_on(daemon.remove_image(SCRATCH_TAG)) {
        eprintln!("could not remove the image {SCRATCH_TAG}: {error:#}");
    }
    executable_in(&out).with_context(|| {
        format!("{BUILD_ACTION} printed no path of an existing executable:\n{out}")
    })
}

/// The last line of `out` that names an existing file.
fn executable_in(out: &str) -> Option<PathBuf> {
    out.lines()
        .rev()
        .flat_map(|line| line.split_whitespace().rev())
        .map(PathBuf::from)
        .find(|p| p.is_absolute() && p.is_file())
}

/// Runs `bash script args…`, its stderr shown, its stdout returned.
fn script(script: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {script}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("{script} failed ({}):\n{stdout}", out.status);
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executable_is_the_last_existing_path_printed() {
        let me = std::env::current_exe().expect("the test binary");
        let out = format!(
            "sha256:abc\nnative executable: {}\nimage wasmwhisk/x:1\n/no/such/file\n",
            me.display()
        );
        assert_eq!(executable_in(&out), Some(me));
        assert_eq!(executable_in("nothing here\n"), None);
    }
}
