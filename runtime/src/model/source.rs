//! Where a model's metadata and tensors come from (a parsed GGUF file), behind a small trait so
//! the loader states exactly what it reads.
use crate::gguf::Gguf;
use crate::quant::GgmlType;
use crate::Result;
use alloc::vec::Vec;

/// One tensor: type, ggml dims (`dims[0]` innermost) and its byte range in the file.
#[derive(Debug, Clone)]
pub(crate) struct TensorDesc {
    pub ty: GgmlType,
    pub dims: Vec<u64>,
    pub offset: usize,
    pub len: usize,
}

/// Metadata and tensor lookup.
pub(crate) trait Source {
    fn has(&self, key: &str) -> bool;
    fn meta_u32(&self, key: &str) -> Result<u32>;
    fn meta_f32(&self, key: &str) -> Result<f32>;
    fn meta_str(&self, key: &str) -> Result<&str>;
    fn meta_u32s(&self, key: &str) -> Result<Vec<u32>>;
    fn meta_array_len(&self, key: &str) -> Result<usize>;
    fn tensor(&self, name: &str) -> Option<TensorDesc>;
}

impl Source for Gguf<'_> {
    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
    fn meta_u32(&self, key: &str) -> Result<u32> {
        self.u32(key)
    }
    fn meta_f32(&self, key: &str) -> Result<f32> {
        self.f32(key)
    }
    fn meta_str(&self, key: &str) -> Result<&str> {
        self.str(key)
    }
    fn meta_u32s(&self, key: &str) -> Result<Vec<u32>> {
        self.array(key)?.to_u32_vec()
    }
    fn meta_array_len(&self, key: &str) -> Result<usize> {
        Ok(self.array(key)?.len())
    }
    fn tensor(&self, name: &str) -> Option<TensorDesc> {
        Gguf::tensor(self, name).map(|t| TensorDesc {
            ty: t.ty,
            dims: t.dims.clone(),
            offset: t.offset as usize,
            len: t.data.len(),
        })
    }
}
