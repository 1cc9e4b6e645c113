//! Writes the input of the modern-engine layout benchmark (`benches/chdb_layouts.py`, run by
//! `scripts/bench.sh`): `N` realistic rows encoded by the sink, and what the script needs to
//! load them.
//!
//! ```sh
//! cargo run --release --example layouts -- 300000 target/bench/layouts
//! ```
//! Writes `<dir>/rows.bin` (RowBinary, the wire columns), `<dir>/structure.txt` (those columns
//! as a `file()` structure), `<dir>/insert_columns.txt` and `<dir>/ddl.sql` (the modern
//! `CREATE TABLE` of the two-tier layout, database `adjust`).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use adjust_sink::clickhouse::Profile;
use adjust_sink::clickhouse::schema::{Target, create_table};
use adjust_sink::clickhouse::types::column_type;
use adjust_sink::row::{self, Column, Received, wire_columns};

/// The ~1 KB install callback of the benchmarks (~40 placeholders).
const CALLBACK: &str = include_str!("../benches/install_callback.txt").trim_ascii_end();

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300_000);
    let dir =
        std::path::PathBuf::from(args.next().unwrap_or_else(|| "target/bench/layouts".into()));
    std::fs::create_dir_all(&dir)?;
    let options = row::Options::new();
    let kinds = ["install", "event", "session", "click", "reattribution"];
    let countries = ["de", "us", "br", "in", "jp", "fr"];
    let mut rows = Vec::with_capacity(n * 800);
    // The callback without the keys each row sets itself (the first of a repeated key wins).
    let varied = [
        "nonce",
        "activity_kind",
        "adid",
        "created_at",
        "country",
        "revenue_float",
    ];
    let base: Vec<&str> = CALLBACK
        .split('&')
        .filter(|pair| !varied.contains(&pair.split('=').next().unwrap_or("")))
        .collect();
    let base = base.join("&");
    let mut query = String::with_capacity(CALLBACK.len() + 128);
    for i in 0..n {
        query.clear();
        query.push_str(&base);
        // Vary what varies in real traffic: kind, device, time, country, revenue.
        let _ = write!(
            query,
            "&nonce=n{i}&activity_kind={}&adid={:032x}&created_at={}&country={}&revenue_float={}.{}",
            kinds[i % kinds.len()],
            (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            1_404_214_665 + (i as u64 % 2_592_000),
            countries[i % countries.len()],
            i % 100,
            i % 97
        );
        let built = row::build(
            &Received {
                query: query.as_bytes(),
                body: b"",
                content_type: None,
                trigger: "",
                source_ip: Ipv4Addr::new(178, 162, 216, 70).into(),
                received_at: 1_404_214_700 + i as u32 % 2_592_000,
            },
            &options,
        );
        rows.extend_from_slice(&built.row);
    }
    std::fs::write(dir.join("rows.bin"), &rows)?;
    let wire = wire_columns();
    let structure: Vec<String> = wire
        .iter()
        .flat_map(|c: &Column| {
            if c.nested() {
                c.wire_names()
                    .into_iter()
                    .map(|n| format!("`{n}` Array(String)"))
                    .collect::<Vec<_>>()
            } else {
                vec![format!("`{}` {}", c.name, column_type(c, Profile::Modern))]
            }
        })
        .collect();
    std::fs::write(dir.join("structure.txt"), structure.join(", "))?;
    let names: Vec<String> = wire
        .iter()
        .flat_map(Column::wire_names)
        .map(|n| format!("`{n}`"))
        .collect();
    std::fs::write(dir.join("insert_columns.txt"), names.join(", "))?;
    let target = Target {
        database: "adjust".into(),
        table: "callbacks".into(),
        physical: Vec::new(),
        columns: Vec::new(),
        cluster: None,
    };
    std::fs::write(dir.join("ddl.sql"), create_table(Profile::Modern, &target))?;
    println!(
        "{n} rows, {} bytes ({} per row) in {}",
        rows.len(),
        rows.len() / n.max(1),
        dir.display()
    );
    Ok(())
}
