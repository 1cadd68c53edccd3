//! A byte-level Standard MIDI File builder for tests: it can write anything, including the
//! malformed files a real reader meets, which no MIDI library would produce.
#![allow(dead_code)]

/// MIDI variable-length encoding of `n`.
pub fn varint(mut n: u32) -> Vec<u8> {
    let mut out = vec![(n & 0x7F) as u8];
    n >>= 7;
    while n > 0 {
        out.push(0x80 | (n & 0x7F) as u8);
        n >>= 7;
    }
    out.reverse();
    out
}

/// A chunk: id, big-endian length of `body`, body.
pub fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    chunk_with_len(id, body.len() as u32, body)
}

/// A chunk whose declared length is `len`, whatever the body really is.
pub fn chunk_with_len(id: &[u8; 4], len: u32, body: &[u8]) -> Vec<u8> {
    let mut out = id.to_vec();
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// An `MThd` chunk.
pub fn header(format: u16, tracks: u16, division: u16) -> Vec<u8> {
    let mut body = format.to_be_bytes().to_vec();
    body.extend_from_slice(&tracks.to_be_bytes());
    body.extend_from_slice(&division.to_be_bytes());
    chunk(b"MThd", &body)
}

/// A whole file from track bodies, with a header that counts them.
pub fn smf(format: u16, division: u16, tracks: &[Trk]) -> Vec<u8> {
    let mut out = header(format, tracks.len() as u16, division);
    for t in tracks {
        out.extend(chunk(b"MTrk", &t.bytes));
    }
    out
}

/// The events of one track chunk, written byte by byte.
#[derive(Clone, Default)]
pub struct Trk {
    pub bytes: Vec<u8>,
}

impl Trk {
    pub fn new() -> Self {
        Self::default()
    }
    /// A delta time followed by raw event bytes (use for running status and damage).
    pub fn ev(&mut self, delta: u32, bytes: &[u8]) -> &mut Self {
        self.bytes.extend(varint(delta));
        self.bytes.extend_from_slice(bytes);
        self
    }
    /// Raw bytes with no delta time.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }
    pub fn on(&mut self, delta: u32, ch: u8, key: u8, vel: u8) -> &mut Self {
        self.ev(delta, &[0x90 | ch, key, vel])
    }
    pub fn off(&mut self, delta: u32, ch: u8, key: u8) -> &mut Self {
        self.ev(delta, &[0x80 | ch, key, 64])
    }
    pub fn program(&mut self, delta: u32, ch: u8, program: u8) -> &mut Self {
        self.ev(delta, &[0xC0 | ch, program])
    }
    pub fn cc(&mut self, delta: u32, ch: u8, controller: u8, value: u8) -> &mut Self {
        self.ev(delta, &[0xB0 | ch, controller, value])
    }
    pub fn bend(&mut self, delta: u32, ch: u8, value: i16) -> &mut Self {
        let raw = (i32::from(value) + 8192) as u16;
        self.ev(delta, &[0xE0 | ch, (raw & 0x7F) as u8, (raw >> 7) as u8])
    }
    pub fn meta(&mut self, delta: u32, kind: u8, data: &[u8]) -> &mut Self {
        self.bytes.extend(varint(delta));
        self.bytes.extend_from_slice(&[0xFF, kind]);
        self.bytes.extend(varint(data.len() as u32));
        self.bytes.extend_from_slice(data);
        self
    }
    pub fn name(&mut self, name: &[u8]) -> &mut Self {
        self.meta(0, 0x03, name)
    }
    pub fn tempo(&mut self, delta: u32, micros: u32) -> &mut Self {
        self.meta(delta, 0x51, &micros.to_be_bytes()[1..])
    }
    pub fn time_sig(&mut self, delta: u32, num: u8, den_exp: u8) -> &mut Self {
        self.meta(delta, 0x58, &[num, den_exp, 24, 8])
    }
    pub fn key_sig(&mut self, delta: u32, sharps: i8, minor: bool) -> &mut Self {
        self.meta(delta, 0x59, &[sharps as u8, u8::from(minor)])
    }
    pub fn eot(&mut self, delta: u32) -> &mut Self {
        self.meta(delta, 0x2F, &[])
    }
    /// A note from `start` lasting `len`, as on/off with explicit statuses, given the
    /// current tick of the track; returns the new current tick. For simple fixtures.
    pub fn note_at(
        &mut self,
        now: &mut u32,
        ch: u8,
        key: u8,
        vel: u8,
        start: u32,
        len: u32,
    ) -> &mut Self {
        self.on(start - *now, ch, key, vel);
        self.off(len, ch, key);
        *now = start + len;
        self
    }
}
