//! A WASI command (it exports `wasi:cli/run`), not a workflow plugin: the runtime must refuse it
//! with a message naming the missing export.

fn main() {
    println!("I am a command, not a plugin");
}
