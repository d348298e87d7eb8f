//! Rewrites docs/callgate.d.ts from the protocol types (the test `contract_is_current`
//! fails until this is run after a change to src/protocol/).

fn main() -> std::io::Result<()> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(callgate::schema::TYPESCRIPT_PATH);
    std::fs::write(&path, callgate::schema::typescript())?;
    println!("wrote {}", path.display());
    Ok(())
}
