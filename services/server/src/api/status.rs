//! The one place where API errors become gRPC statuses.

use crate::error::ApiError;
use sparkvc_proto::ERROR_TYPE_METADATA;
use tonic::{Code, Status, metadata::MetadataValue};

pub fn to_status(err: ApiError) -> Status {
    let code = match &err {
        ApiError::Validation(_) => Code::InvalidArgument,
        ApiError::NotFound(_) => Code::NotFound,
        ApiError::Internal(_) => Code::Internal,
        ApiError::AccessDenied(_) => Code::PermissionDenied,
    };
    let mut status = Status::new(code, err.to_string());
    status.metadata_mut().insert(
        ERROR_TYPE_METADATA,
        MetadataValue::from_static(err.aws_type()),
    );
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_the_aws_error_type_and_message() {
        let status = to_status(ApiError::not_found("Job run x doesn't exist."));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "Job run x doesn't exist.");
        assert_eq!(
            status.metadata().get(ERROR_TYPE_METADATA).unwrap(),
            "ResourceNotFoundException"
        );
    }
}
