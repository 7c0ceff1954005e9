//! Embeds the dashboard (`ui/`: HTML, scripts, styles, images) in the server binary, so a
//! deployment is one file and no Node.js runs anywhere. Writes `$OUT_DIR/ui_assets.rs`: a table
//! of (path, bytes, etag) for every file under `ui/`.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut found = Vec::new();
    files(&root, &mut found);
    found.sort();
    let mut table = String::from(
        "/// Every file of the dashboard: path under `ui/`, contents, ETag.\npub static ASSETS: &[(&str, &[u8], &str)] = &[\n",
    );
    for path in found {
        println!("cargo:rerun-if-changed={}", path.display());
        let rel = path
            .strip_prefix(&root)
            .expect("under ui/")
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(&path).expect("readable dashboard file");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        table.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?}), \"\\\"{:016x}\\\"\"),\n",
            path.display().to_string(),
            h.finish()
        ));
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("ui_assets.rs");
    std::fs::write(out, table).expect("OUT_DIR is writable");
}
