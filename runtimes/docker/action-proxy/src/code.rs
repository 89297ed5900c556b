//! An action's code, from `/init`'s `value.code` to `<action dir>/exec`.
//!
//! | `code` | `binary` | what it is |
//! |---|---|---|
//! | absent or empty | – | the image's own `exec` (a blackbox image built `FROM` this one) |
//! | base64 of a zip (`PK…`) | `true` | extracted into the action dir; must contain `exec` |
//! | base64 of anything else | `true` | the executable itself (e.g. a static ELF) |
//! | text | `false` | a script, written as is (it needs its interpreter in the image) |
//!
//! [`decode`] is pure; [`install`] writes the files.

use std::fs;
use std::io::{self, Cursor};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The name of the executable in the action dir.
pub const EXEC: &str = "exec";

/// Standard base64, padded or not (OpenWhisk sends it padded; a hand-made
/// request may not be).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decoded action code.
#[derive(Debug, PartialEq, Eq)]
pub enum Code {
    /// No code: run the image's `exec`.
    Existing,
    /// A zip archive with `exec` inside.
    Zip(Vec<u8>),
    /// The executable's bytes.
    Executable(Vec<u8>),
    /// A script's text.
    Script(String),
}

/// Why the code cannot be installed. Each message is what `/init` answers.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// `binary` is true but `code` is not base64.
    #[error("The action's code is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// No code, and the image has no executable either.
    #[error("The action has no code and the image has no executable {0}.")]
    NoExecutable(String),
    /// The zip cannot be read or extracted.
    #[error("The action's zip file cannot be extracted: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// The zip has no `exec` at its top level.
    #[error("The action's zip file has no 'exec' at its top level.")]
    ZipWithoutExec,
    /// Writing the files failed.
    #[error("The action's code cannot be written to {path}: {source}")]
    Write {
        /// The path written to.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
}

/// Decodes `/init`'s `code` and `binary`.
pub fn decode(code: Option<&str>, binary: bool) -> Result<Code, CodeError> {
    let code = code.unwrap_or("");
    if code.trim().is_empty() {
        return Ok(Code::Existing);
    }
    if !binary {
        return Ok(Code::Script(code.to_string()));
    }
    let compact: Vec<u8> = code
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    let bytes = BASE64.decode(compact)?;
    if bytes.starts_with(b"PK") {
        Ok(Code::Zip(bytes))
    } else {
        Ok(Code::Executable(bytes))
    }
}

/// Puts `code` in `dir` so that `dir/exec` is the executable to run.
pub fn install(code: Code, dir: &Path) -> Result<(), CodeError> {
    let exec = dir.join(EXEC);
    let write_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| CodeError::Write { path, source }
    };
    match code {
        Code::Existing => {
            let executable = fs::metadata(&exec)
                .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .unwrap_or(false);
            if !executable {
                return Err(CodeError::NoExecutable(exec.display().to_string()));
            }
        }
        Code::Zip(bytes) => {
            fs::create_dir_all(dir).map_err(write_error(dir))?;
            let mut archive = zip::ZipArchive::new(Cursor::new(bytes))?;
            archive.extract(dir)?;
            if !fs::metadata(&exec).is_ok_and(|meta| meta.is_file()) {
                return Err(CodeError::ZipWithoutExec);
            }
            make_executable(&exec).map_err(write_error(&exec))?;
        }
        Code::Executable(bytes) => write_executable(dir, &bytes).map_err(write_error(&exec))?,
        Code::Script(text) => write_executable(dir, text.as_bytes()).map_err(write_error(&exec))?,
    }
    Ok(())
}

/// Writes `dir/exec` (mode 0755) through a temporary file and a rename, so it
/// is never seen half written.
fn write_executable(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let partial = dir.join(".exec.partial");
    fs::write(&partial, bytes)?;
    make_executable(&partial)?;
    fs::rename(&partial, dir.join(EXEC))
}

fn make_executable(path: &Path) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn base64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in files {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn absent_or_empty_code_is_the_images_exec() {
        assert_eq!(decode(None, true).unwrap(), Code::Existing);
        assert_eq!(decode(Some(""), false).unwrap(), Code::Existing);
        assert_eq!(decode(Some("  \n"), true).unwrap(), Code::Existing);
    }

    #[test]
    fn text_code_is_a_script() {
        assert_eq!(
            decode(Some("#!/bin/sh\necho {}"), false).unwrap(),
            Code::Script("#!/bin/sh\necho {}".into())
        );
    }

    #[test]
    fn binary_code_is_an_executable_or_a_zip() {
        let elf = b"\x7fELF\x02\x01\x01rest";
        assert_eq!(
            decode(Some(&base64(elf)), true).unwrap(),
            Code::Executable(elf.to_vec())
        );
        let zip = zip_of(&[("exec", b"#!/bin/sh\n")]);
        assert_eq!(decode(Some(&base64(&zip)), true).unwrap(), Code::Zip(zip));
    }

    #[test]
    fn base64_may_be_wrapped_and_unpadded() {
        assert_eq!(
            decode(Some("aGVs\nbG8"), true).unwrap(),
            Code::Executable(b"hello".to_vec())
        );
    }

    #[test]
    fn bad_base64_is_a_clear_error() {
        let error = decode(Some("not base64!"), true).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("The action's code is not valid base64")
        );
    }

    #[test]
    fn an_executable_is_written_with_mode_0755() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("action");
        install(Code::Executable(b"bytes".to_vec()), &target).unwrap();
        let exec = target.join(EXEC);
        assert_eq!(fs::read(&exec).unwrap(), b"bytes");
        assert_eq!(
            fs::metadata(&exec).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(!target.join(".exec.partial").exists());
    }

    #[test]
    fn a_zip_is_extracted_and_its_exec_made_executable() {
        let dir = tempfile::tempdir().unwrap();
        let zip = zip_of(&[("exec", b"#!/bin/sh\n"), ("lib/data.txt", b"data")]);
        install(Code::Zip(zip), dir.path()).unwrap();
        let exec = dir.path().join(EXEC);
        assert_eq!(
            fs::metadata(&exec).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(fs::read(dir.path().join("lib/data.txt")).unwrap(), b"data");
    }

    #[test]
    fn a_zip_without_exec_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let zip = zip_of(&[("main", b"x")]);
        let error = install(Code::Zip(zip), dir.path()).unwrap_err();
        assert!(matches!(error, CodeError::ZipWithoutExec), "{error}");
    }

    #[test]
    fn a_broken_zip_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = install(Code::Zip(b"PK\x03\x04garbage".to_vec()), dir.path()).unwrap_err();
        assert!(matches!(error, CodeError::Zip(_)), "{error}");
    }

    #[test]
    fn no_code_needs_an_executable_in_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let error = install(Code::Existing, dir.path()).unwrap_err();
        assert!(matches!(error, CodeError::NoExecutable(_)), "{error}");
        let exec = dir.path().join(EXEC);
        fs::write(&exec, b"x").unwrap();
        fs::set_permissions(&exec, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(install(Code::Existing, dir.path()).is_err());
        fs::set_permissions(&exec, fs::Permissions::from_mode(0o755)).unwrap();
        install(Code::Existing, dir.path()).unwrap();
    }
}
