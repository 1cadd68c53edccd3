#[test]
fn scratch() {
    let b = std::fs::read("/work/shared/data/bach_chorales/bwv315.mid").unwrap();
    let (s, r) = aurl_data::read_midi(&b, aurl_data::Mode::Lenient).unwrap();
    for p in &r.problems {
        eprintln!("{p}");
    }
    let smf = midly::Smf::parse(&b).unwrap();
    for (ti, t) in smf.tracks.iter().enumerate() {
        let mut tick = 0u64;
        for e in t {
            tick += e.delta.as_int() as u64;
            if let midly::TrackEventKind::Midi { channel, message } = e.kind {
                let s = format!("{message:?}");
                if ti == 1 && s.contains("Note") {
                    eprintln!("t{ti} {tick} ch{channel} {s}");
                }
            }
        }
    }
    let _ = s;
}
