//! QR codes as PNG data URLs (the `QRDataImage` of spec §3.24): the symbol comes from the
//! `qrcode` library, the image from the `png` encoder.

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module.
const SCALE: usize = 4;
/// Light modules around the symbol (ISO/IEC 18004 asks for four).
const QUIET_ZONE: usize = 4;

#[derive(Debug, thiserror::Error)]
#[error("QR image could not be made: {0}")]
pub struct QrError(String);

/// Encodes `text` as a QR symbol and returns `data:image/png;base64,…`.
pub fn png_data_url(text: &str) -> Result<String, QrError> {
    let png = png_bytes(text)?;
    Ok(format!(
        "data:image/png;base64,{}",
        crate::crypto::b64std(&png)
    ))
}

/// The PNG file of `text`'s QR symbol: 8-bit grey, black modules on white.
pub fn png_bytes(text: &str) -> Result<Vec<u8>, QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| QrError(e.to_string()))?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET_ZONE, i / modules + QUIET_ZONE);
        for y in my * SCALE..(my + 1) * SCALE {
            let row = y * side;
            pixels[row + mx * SCALE..row + (mx + 1) * SCALE].fill(0);
        }
    }
    let side_u32 = u32::try_from(side).map_err(|e| QrError(e.to_string()))?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| QrError(e.to_string()))?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| QrError(e.to_string()))?;
    writer.finish().map_err(|e| QrError(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_decodes_to_the_symbol() {
        let text = "otpauth://totp/App:a%40x.de?secret=AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT&issuer=App";
        let bytes = png_bytes(text).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).unwrap();
        let side = (code.width() + 2 * QUIET_ZONE) * SCALE;
        assert_eq!(info.width as usize, side);
        // Every module's centre pixel has the module's colour; the quiet zone is white.
        let colors = code.to_colors();
        for (i, c) in colors.iter().enumerate() {
            let (mx, my) = (i % code.width() + QUIET_ZONE, i / code.width() + QUIET_ZONE);
            let px = buf[(my * SCALE + 1) * side + mx * SCALE + 1];
            assert_eq!(px == 0, *c == Color::Dark, "module {i}");
        }
        assert!(buf[..side * QUIET_ZONE * SCALE].iter().all(|p| *p == 255));
        assert!(
            png_data_url(text)
                .unwrap()
                .starts_with("data:image/png;base64,iVBORw0KGgo")
        );
    }
}
