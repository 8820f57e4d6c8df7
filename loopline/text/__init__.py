"""Text models shared by the rooms that classify what people write or say (journey intents,
media sentiment): the numpy MiniLM sentence embedder and the softmax classifier trained on it.
Imports nothing of ours but itself."""
