//! OpenAI ⇄ Anthropic translation (being built).
