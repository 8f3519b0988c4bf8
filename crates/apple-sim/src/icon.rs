//! App icons for the metadata lookup's artwork URLs: a rounded square in a colour derived from the
//! adamId, with a lighter disc, as PNG. Enough for a console to show distinct icons offline.

/// Encodes a `size`×`size` RGBA PNG for `adam_id`.
pub fn png(adam_id: &str, size: u32) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(adam_id.as_bytes());
    let hue = f32::from(u16::from_be_bytes([h[0], h[1]]) % 360);
    let (r, g, b) = hsl(hue, 0.55, 0.48);
    let (lr, lg, lb) = hsl((hue + 40.0) % 360.0, 0.6, 0.72);
    let s = size as f32;
    let radius = s * 0.22;
    let mut data = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            // Distance outside the rounded square's corner arcs.
            let cx = fx.clamp(radius, s - radius);
            let cy = fy.clamp(radius, s - radius);
            let outside = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt() - radius;
            let alpha = (1.0 - outside).clamp(0.0, 1.0);
            let disc = ((fx - s / 2.0).powi(2) + (fy - s / 2.0).powi(2)).sqrt() < s * 0.28;
            let (pr, pg, pb) = if disc { (lr, lg, lb) } else { (r, g, b) };
            data.extend_from_slice(&[pr, pg, pb, (alpha * 255.0) as u8]);
        }
    }
    let mut out = Vec::new();
    let mut enc = ::png::Encoder::new(&mut out, size, size);
    enc.set_color(::png::ColorType::Rgba);
    enc.set_depth(::png::BitDepth::Eight);
    let mut writer = enc.write_header().expect("PNG header to memory");
    writer.write_image_data(&data).expect("PNG data to memory");
    drop(writer);
    out
}

fn hsl(h: f32, s: f32, l: f32) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let to = |v: f32| ((v + m) * 255.0).round() as u8;
    (to(r), to(g), to(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn icons_are_pngs_and_differ_per_app() {
        let a = super::png("408709785", 64);
        let b = super::png("361309726", 64);
        assert_eq!(&a[..8], b"\x89PNG\r\n\x1a\n");
        assert_ne!(a, b);
    }
}
