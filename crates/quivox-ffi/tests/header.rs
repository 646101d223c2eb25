//! The checked-in header must be exactly what cbindgen generates from the current source, so a
//! change of the C API cannot land without its header. To regenerate after changing the API:
//! `QUIVOX_UPDATE_HEADER=1 cargo test --release -p quivox-ffi --test header`.

use std::path::Path;

#[test]
fn checked_in_header_matches_cbindgen_output() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("reading crates/quivox-ffi/cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generating the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("cbindgen writes UTF-8");
    let path = crate_dir.join("include/quivox.h");
    if std::env::var_os("QUIVOX_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("writing include/quivox.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let first_difference = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "one file is a prefix of the other".to_string(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "include/quivox.h differs from cbindgen's output ({first_difference}): regenerate it \
             with `QUIVOX_UPDATE_HEADER=1 cargo test --release -p quivox-ffi --test header` and \
             commit it"
        );
    }
}
