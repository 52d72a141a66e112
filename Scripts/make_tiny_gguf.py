"""A tiny llama-architecture GGUF with random weights and a real tokenizer (from one of
llama.cpp's ggml-vocab-*.gguf files), so llama-server runs on a CPU with nothing downloaded.
Its words are gibberish; its token counts, chat template and timing path are real.
Usage: make_tiny_gguf.py LLAMA_CPP_DIR VOCAB_NAME OUT.gguf"""
import sys
import numpy as np

root, vocab_name, out = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, f"{root}/gguf-py")
import gguf  # noqa: E402

reader = gguf.GGUFReader(f"{root}/models/ggml-vocab-{vocab_name}.gguf")
writer = gguf.GGUFWriter(out, "llama")
embd, layers, heads, ff, ctx = 64, 2, 4, 128, 4096
vocab_size = None
for field in reader.fields.values():
    name = field.name
    if not name.startswith("tokenizer."):
        continue
    kind = field.types[0]
    if kind == gguf.GGUFValueType.ARRAY:
        sub = field.types[-1]
        if sub == gguf.GGUFValueType.STRING:
            values = [bytes(field.parts[i]).decode("utf-8", errors="replace") for i in field.data]
        else:
            values = [field.parts[i].tolist()[0] for i in field.data]
        if name == "tokenizer.ggml.tokens":
            vocab_size = len(values)
        writer.add_key_value(name, values, kind, sub_type=sub)
    elif kind == gguf.GGUFValueType.STRING:
        writer.add_key_value(name, bytes(field.parts[field.data[0]]).decode("utf-8"), kind)
    else:
        writer.add_key_value(name, field.parts[field.data[0]].tolist()[0], kind)
if "tokenizer.chat_template" not in reader.fields:
    writer.add_chat_template(
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
writer.add_name(f"tiny-{vocab_name}")
writer.add_context_length(ctx)
writer.add_embedding_length(embd)
writer.add_block_count(layers)
writer.add_feed_forward_length(ff)
writer.add_head_count(heads)
writer.add_head_count_kv(heads)
writer.add_layer_norm_rms_eps(1e-5)
writer.add_rope_dimension_count(embd // heads)
writer.add_file_type(gguf.LlamaFileType.ALL_F32)
rng = np.random.default_rng(0)

def tensor(name, *shape):
    writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

tensor("token_embd.weight", vocab_size, embd)
writer.add_tensor("output_norm.weight", np.ones(embd, dtype=np.float32))
tensor("output.weight", vocab_size, embd)
for layer in range(layers):
    p = f"blk.{layer}."
    writer.add_tensor(p + "attn_norm.weight", np.ones(embd, dtype=np.float32))
    writer.add_tensor(p + "ffn_norm.weight", np.ones(embd, dtype=np.float32))
    for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
        tensor(p + part + ".weight", embd, embd)
    tensor(p + "ffn_gate.weight", ff, embd)
    tensor(p + "ffn_up.weight", ff, embd)
    tensor(p + "ffn_down.weight", embd, ff)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_tensors_to_file()
writer.close()
print(f"wrote {out}: vocabulary {vocab_size} from ggml-vocab-{vocab_name}.gguf")
