use super::*;
pub struct FileReader;
impl FileReader {
    pub fn open(path: &std::path::Path) -> Result<FileReader, CaptureError> {
        Err(CaptureError {
            file: path.display().to_string(),
            offset: 0,
            kind: CaptureErrorKind::NotACapture,
        })
    }
}
impl PacketSource for FileReader {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        Ok(None)
    }
    fn stats(&self) -> CaptureStats {
        CaptureStats::default()
    }
    fn name(&self) -> &str {
        ""
    }
    fn set_next_index(&mut self, _n: u64) {}
}
