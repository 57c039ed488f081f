//! What a call asked for and the deterministic answer the mock gives to it, independent
//! of the wire format.
//!
//! Invariant: the same request to the same mock with the same faults always yields the
//! same content: "Hello from mock NAME" (repeated when more deltas than characters are
//! asked for) or, when the request offers tools, a call of the first tool with the
//! arguments `{"mock":"NAME"}` — unless the conversation ends with a tool result, which
//! is answered with text, so an agent loop (call, result, answer) ends.

use serde::Deserialize;

use super::body::{at_least_chars, split_even};

/// The fields of a request body the mock looks at; everything else is parsed (so invalid
/// JSON is refused) and ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Request {
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) stream: Option<bool>,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub(crate) tools: Option<Vec<ToolDef>>,
    #[serde(default)]
    pub(crate) input: Option<serde_json::Value>,
    /// Chat and Messages turns: only the last one is looked at.
    #[serde(default)]
    pub(crate) messages: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) encoding_format: Option<String>,
    #[serde(default)]
    pub(crate) dimensions: Option<usize>,
}

/// OpenAI's `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: Option<bool>,
}

/// A tool definition in either format: Anthropic puts `name` at the top, OpenAI under
/// `function`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ToolDef {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    function: Option<FunctionDef>,
}

impl ToolDef {
    /// A tool known only by its name (Gemini declares functions in its own shape).
    pub(crate) fn named(name: &str) -> ToolDef {
        ToolDef {
            name: Some(name.to_owned()),
            function: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct FunctionDef {
    #[serde(default)]
    name: Option<String>,
}

impl Request {
    /// Whether the caller asked for a stream.
    pub(crate) fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether an OpenAI stream should end with a usage chunk.
    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// Whether the last turn is a tool result: Chat `role: tool`, an Anthropic
    /// `tool_result` block, a Responses `function_call_output` item.
    pub(crate) fn ends_with_tool_result(&self) -> bool {
        let last = |v: &Option<serde_json::Value>| v.as_ref()?.as_array()?.last().cloned();
        if let Some(item) = last(&self.input) {
            return item["type"] == "function_call_output";
        }
        last(&self.messages).is_some_and(|m| {
            m["role"] == "tool"
                || m["content"].as_array().is_some_and(|blocks| {
                    blocks
                        .iter()
                        .any(|b| b["type"] == "tool_result" || b.get("toolResult").is_some())
                })
        })
    }

    /// The fields of a Bedrock Converse body the mock looks at (`stream` from the path).
    pub(crate) fn from_converse(body: &serde_json::Value, stream: bool) -> Request {
        let tools = body
            .pointer("/toolConfig/tools")
            .and_then(serde_json::Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .map(|t| ToolDef {
                        name: t
                            .pointer("/toolSpec/name")
                            .and_then(serde_json::Value::as_str)
                            .map(str::to_owned),
                        function: None,
                    })
                    .collect()
            });
        Request {
            stream: Some(stream),
            tools,
            messages: body.get("messages").cloned(),
            ..Request::default()
        }
    }

    /// The name of the first tool offered, if any.
    pub(crate) fn first_tool(&self) -> Option<&str> {
        let tool = self.tools.as_ref()?.first()?;
        tool.name
            .as_deref()
            .or_else(|| tool.function.as_ref()?.name.as_deref())
    }
}

/// The content of a reply.
pub(crate) enum Content {
    /// Assistant text.
    Text(String),
    /// A call of the named tool with these JSON arguments.
    Tool { name: String, arguments: String },
}

/// One reply, ready to be written in either format.
pub(crate) struct Reply<'a> {
    /// Sequence number of the call on this mock, used in the ids.
    pub(crate) id: u64,
    /// The model to report: the requested one.
    pub(crate) model: &'a str,
    /// Unix seconds.
    pub(crate) created: u64,
    pub(crate) prompt_tokens: u32,
    pub(crate) content: Content,
    /// How many deltas a stream of it has; also its completion token count.
    pub(crate) chunks: usize,
}

impl<'a> Reply<'a> {
    /// The reply of mock `name` to `request` of `body_len` bytes, in `chunks` deltas.
    pub(crate) fn new(
        name: &str,
        id: u64,
        model: &'a str,
        request: &Request,
        body_len: usize,
        chunks: usize,
    ) -> Self {
        let tool = request
            .first_tool()
            .filter(|_| !request.ends_with_tool_result());
        let content = match tool {
            Some(tool) => {
                let mut arguments = serde_json::json!({ "mock": name }).to_string();
                // JSON allows blanks before the closing brace: pad so every delta has a
                // character to carry.
                let missing = chunks.saturating_sub(arguments.chars().count());
                arguments.insert_str(arguments.len() - 1, &" ".repeat(missing));
                Content::Tool {
                    name: tool.to_owned(),
                    arguments,
                }
            }
            None => Content::Text(at_least_chars(&format!("Hello from mock {name}"), chunks)),
        };
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            id,
            model,
            created,
            prompt_tokens: u32::try_from(body_len / 4).unwrap_or(u32::MAX).max(1),
            content,
            chunks,
        }
    }

    /// The text or tool arguments in `chunks` non-empty pieces.
    pub(crate) fn pieces(&self) -> Vec<&str> {
        match &self.content {
            Content::Text(text) => split_even(text, self.chunks),
            Content::Tool { arguments, .. } => split_even(arguments, self.chunks),
        }
    }

    /// Completion tokens: one per delta.
    pub(crate) fn completion_tokens(&self) -> u32 {
        u32::try_from(self.chunks).unwrap_or(u32::MAX)
    }
}
