//! Renderings of one message: the summary line, the `-V` tree, the SDK's log notation and
//! canonical protobuf JSON.
