//! The gRPC codec of the emr-containers service: prost's, except that a
//! body that is not a valid message of its type is the sender's mistake, a
//! ValidationException (`INVALID_ARGUMENT` with the AWS error name), as AWS
//! answers an undecodable request, not an `INTERNAL` error as prost's codec
//! says. The message names the type and where decoding failed (prost's own
//! words: a field path and what was wrong), never the bytes.

use crate::ERROR_TYPE_METADATA;
use prost::Message;
use std::marker::PhantomData;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// A ValidationException status: `INVALID_ARGUMENT` carrying the AWS error
/// name in [`ERROR_TYPE_METADATA`].
pub fn validation_status(message: impl Into<String>) -> Status {
    let mut status = Status::invalid_argument(message);
    status.metadata_mut().insert(
        ERROR_TYPE_METADATA,
        tonic::metadata::MetadataValue::from_static("ValidationException"),
    );
    status
}

/// Encodes `T`, decodes `U`, as prost does.
#[derive(Debug)]
pub struct AwsCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for AwsCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for AwsCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = AwsDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        AwsDecoder(ProstDecoder::default())
    }
}

/// Prost's decoder with its errors made ValidationExceptions.
#[derive(Debug)]
pub struct AwsDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for AwsDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            let name = std::any::type_name::<U>()
                .rsplit("::")
                .next()
                .unwrap_or("request");
            validation_status(format!(
                "1 validation error detected: the body is not a valid {name}: {}",
                status.message()
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
