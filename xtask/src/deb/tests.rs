use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::docs;
use crate::workspace_root;

/// Stages the package from the repository's files around a stand-in binary.
fn staged(dir: &Path) -> std::path::PathBuf {
    let binary = dir.join("clawlet-webhookd");
    fs::write(&binary, b"stand-in binary").unwrap();
    let docs = docs::render("0.1.0 (abc1234)").unwrap();
    let root = workspace_root();
    let inputs = Inputs {
        root: &root,
        binary: &binary,
        version: "0.1.0",
        arch: "amd64",
        depends: "libc6 (>= 2.34), libgcc-s1",
        docs: &docs,
    };
    let stage = dir.join("stage");
    super::stage(&stage, &inputs).unwrap();
    stage
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn the_staging_tree_holds_what_an_operator_expects() {
    let dir = tempfile::tempdir().unwrap();
    let stage = staged(dir.path());
    for (path, expected_mode) in [
        ("usr/bin/clawlet-webhookd", 0o755),
        ("usr/lib/systemd/system/clawlet-webhookd.service", 0o644),
        ("etc/clawlet/config.yaml", 0o644),
        ("usr/share/doc/clawlet-webhookd/README.md", 0o644),
        ("usr/share/doc/clawlet-webhookd/copyright", 0o644),
        (
            "usr/share/bash-completion/completions/clawlet-webhookd",
            0o644,
        ),
        ("usr/share/zsh/vendor-completions/_clawlet-webhookd", 0o644),
        (
            "usr/share/fish/vendor_completions.d/clawlet-webhookd.fish",
            0o644,
        ),
        ("usr/share/man/man1/clawlet-webhookd.1.gz", 0o644),
        ("usr/share/man/man1/clawlet-webhookd-send.1.gz", 0o644),
        ("DEBIAN/control", 0o644),
        ("DEBIAN/conffiles", 0o644),
        ("usr/share/man", 0o755),
        ("etc/clawlet", 0o755),
    ] {
        assert_eq!(mode(&stage.join(path)), expected_mode, "{path}");
    }

    // Every conffile is in the tree; the example configuration is one, byte for byte.
    let conffiles = fs::read_to_string(stage.join("DEBIAN/conffiles")).unwrap();
    assert_eq!(conffiles, "/etc/clawlet/config.yaml\n");
    for conffile in conffiles.lines() {
        assert!(stage.join(&conffile[1..]).is_file(), "{conffile}");
    }
    assert_eq!(
        fs::read(stage.join("etc/clawlet/config.yaml")).unwrap(),
        fs::read(workspace_root().join("config/example.yaml")).unwrap()
    );

    // The unit starts the packaged binary, not the manual install's.
    let unit =
        fs::read_to_string(stage.join("usr/lib/systemd/system/clawlet-webhookd.service")).unwrap();
    let exec_start: Vec<&str> = unit
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert!(
        !exec_start.is_empty()
            && exec_start
                .iter()
                .all(|l| l.contains("/usr/bin/clawlet-webhookd") && !l.contains("/usr/local/")),
        "{exec_start:?}"
    );

    // The man page is gzip'd roff that names the version.
    let page = Command::new("gzip")
        .args(["-dc"])
        .arg(stage.join("usr/share/man/man1/clawlet-webhookd.1.gz"))
        .output()
        .unwrap();
    assert!(page.status.success());
    let page = String::from_utf8(page.stdout).unwrap();
    assert!(page.starts_with(".ie"), "{page}");
    assert!(page.contains("0.1.0 (abc1234)"), "{page}");

    let control = fs::read_to_string(stage.join("DEBIAN/control")).unwrap();
    for field in [
        "Package: clawlet-webhookd\n",
        "Version: 0.1.0\n",
        "Architecture: amd64\n",
        "Depends: libc6 (>= 2.34), libgcc-s1\n",
    ] {
        assert!(control.contains(field), "{field} missing from\n{control}");
    }
    // Maintainer scripts only for the unit's group.
    let mut control_files: Vec<String> = fs::read_dir(stage.join("DEBIAN"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    control_files.sort();
    if service_group(&workspace_root()).unwrap().is_some() {
        assert_eq!(
            control_files,
            ["conffiles", "control", "postinst", "postrm"]
        );
        assert_eq!(mode(&stage.join("DEBIAN/postinst")), 0o755);
    } else {
        assert_eq!(control_files, ["conffiles", "control"]);
    }
}

#[test]
fn the_maintainer_scripts_are_valid_sh_and_create_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let [(_, postinst), (_, postrm)] = maintainer_scripts("clawlet");
    for (name, script) in [("postinst", &postinst), ("postrm", &postrm)] {
        let path = dir.path().join(name);
        fs::write(&path, script).unwrap();
        let check = Command::new("sh").arg("-n").arg(&path).output().unwrap();
        assert!(check.status.success(), "{name}: {check:?}\n{script}");
        assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    }
    assert!(
        postinst.contains("addgroup --system --quiet clawlet"),
        "{postinst}"
    );
    assert!(
        postinst.contains("--add root clawlet 0640 /etc/clawlet/config.yaml"),
        "{postinst}"
    );
    assert!(
        postinst.contains("--add root clawlet 0750 /etc/clawlet\n"),
        "{postinst}"
    );
    assert!(postrm.contains("[ \"$1\" = purge ]"), "{postrm}");
}

#[test]
fn depends_names_the_package_of_each_library_and_the_newest_glibc() {
    let headers = "\nDynamic Section:\n  NEEDED               libgcc_s.so.1\n  NEEDED               \
                   libm.so.6\n  NEEDED               libc.so.6\n  INIT                 0x0\n";
    let symbols = "0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.2.5) free\n\
                   0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.34) __libc_start_main\n\
                   0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.9) pipe2\n\
                   0000000000000000      DF *UND*  0000000000000000 (GCC_3.0) _Unwind_Resume\n";
    assert_eq!(
        depends_from(headers, symbols).unwrap(),
        "libgcc-s1, libc6 (>= 2.34)"
    );
    let unknown = "  NEEDED               libssl.so.3\n";
    let err = depends_from(unknown, symbols).unwrap_err().to_string();
    assert!(
        err.contains("libssl.so.3") && err.contains("SONAME_PACKAGES"),
        "{err}"
    );
}

#[test]
fn a_unit_that_does_not_start_the_manual_install_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("deploy")).unwrap();
    fs::write(
        dir.path().join("deploy/clawlet-webhookd.service"),
        "[Service]\nExecStart=/opt/clawlet/clawlet-webhookd serve\n",
    )
    .unwrap();
    let err = unit(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("ExecStart=") && err.contains("MANUAL_BINARY_PATH"),
        "{err}"
    );
}
