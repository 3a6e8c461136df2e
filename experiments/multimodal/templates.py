"""Chat templates of the two profiles, as Jinja strings a tokenizer/processor stores and saves.

Both accept a message's content as a string or as a list of parts ({"type": "image"} / {"type": "text"}), so the
same template serves training here and lmms-eval's llava_hf model (which passes strings) after the hand-off.
An image part, or the literal "<image>" in a string, becomes the processor's image token.
"""

from __future__ import annotations

_CONTENT = (
    "{%- macro content(message) -%}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{ '<image>\n' }}{%- else -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
)

# LLaVA-1.5's training conversation (LLaVA's conv_vicuna_v1): system line, "USER: ... ASSISTANT: ...</s>".
VICUNA_V1 = (
    _CONTENT + "{{- 'A chat between a curious human and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the human\\'s questions.' -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{ ' USER: ' + content(message) }}"
    "{%- else -%}{{ ' ASSISTANT: ' + content(message) + eos_token }}{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ ' ASSISTANT:' }}{%- endif -%}"
)

# SmolLM2-Instruct's ChatML turns without its default system prompt (which would cost 20 tokens a sample here).
CHATML = (
    _CONTENT + "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + content(message) + '<|im_end|>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}"
)

TEMPLATES = {"vicuna_v1": VICUNA_V1, "chatml": CHATML}


def chat_template(name: str) -> str:
    """The template called name in a backbone config (backbone.chat_template)."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown chat template {name!r}; known: {sorted(TEMPLATES)}")
    return TEMPLATES[name]
