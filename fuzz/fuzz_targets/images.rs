//! PNG and JPEG files through the image-folder loader. The first byte picks the extension.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata::data::{ImageDatasetOptions, image_dataset_from_directory};

fuzz_target!(|bytes: &[u8]| {
    let Some((&first, rest)) = bytes.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("strata-fuzz-images-{}", std::process::id()));
    let class = dir.join("class_a");
    let _ = std::fs::remove_dir_all(&class);
    std::fs::create_dir_all(&class).unwrap();
    let name = if first % 2 == 0 { "picture.png" } else { "picture.jpg" };
    std::fs::write(class.join(name), rest).unwrap();
    let options = ImageDatasetOptions {
        image_size: (28, 28),
        ..ImageDatasetOptions::default()
    };
    let _ = image_dataset_from_directory(&dir, &options);
});
