"""A randomly initialised model of SmolLM-135M's shape (LlamaForCausalLM: hidden 576, 30 layers,
9 query and 3 key/value heads, SwiGLU 1536, vocabulary 49152, tied embeddings, RoPE θ 100000,
8192 positions), saved in BFloat16 as transformers writes it: the imported model of
bench/forward.sh. No network: the weights are random, the shapes and layout are SmolLM's."""
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

torch.manual_seed(0)
config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                     num_key_value_heads=3, max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True,
                     rope_parameters={"rope_type": "default", "rope_theta": 100000.0}, bos_token_id=None, eos_token_id=None)
LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(sys.argv[1])
