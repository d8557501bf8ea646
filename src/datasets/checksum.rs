//! The checksums Keras gives for its data set files.

/// The checksum Keras gives for a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// A SHA-256, hex.
    Sha256(&'static str),
    /// An MD5, hex (Keras's word indexes).
    Md5(&'static str),
    /// None: Keras checks nothing (Fashion-MNIST).
    Unchecked,
}

impl Checksum {
    /// `SHA-256 abc…` for messages.
    pub fn describe(self) -> String {
        match self {
            Checksum::Sha256(hex) => format!("SHA-256 {hex}"),
            Checksum::Md5(hex) => format!("MD5 {hex}"),
            Checksum::Unchecked => "no checksum (Keras gives none)".into(),
        }
    }
}
