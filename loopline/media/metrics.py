"""The media pipeline's counters and gauges, and their Prometheus text form."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MediaMetrics:
    streams_active: int = 0
    streams_total: int = 0
    frames_total: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # by reason kind
    frames_late: int = 0
    frames_filled: int = 0
    vad_windows_total: int = 0
    vad_batches_total: int = 0
    utterances_final_total: int = 0
    utterances_partial_total: int = 0
    partials_dropped_total: int = 0
    asr_packs_total: int = 0
    asr_clips_total: int = 0
    asr_seconds_total: float = 0.0
    asr_retries_total: int = 0
    asr_lag_seconds: float = 0.0
    asr_queue_finals: int = 0
    asr_queue_partials: int = 0
    redactions: dict[str, int] = field(default_factory=dict)
    dtmf_suppressed_total: int = 0
    sentiment_alerts_total: int = 0
    model_errors_total: int = 0

    def reject(self, kind: str) -> None:
        self.rejected[kind] = self.rejected.get(kind, 0) + 1

    def redacted(self, kind: str) -> None:
        self.redactions[kind] = self.redactions.get(kind, 0) + 1

    def prometheus(self) -> str:
        """The text exposition format (version 0.0.4)."""
        lines: list[str] = []

        def metric(name: str, mtype: str, help_text: str, value: float, **labels: str) -> None:
            if not any(line.startswith(f"# HELP {name} ") for line in lines):
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {mtype}")
            label = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{label}}} {value:g}" if label else f"{name} {value:g}")

        metric(
            "asr_lag_seconds",
            "gauge",
            "Age of the oldest utterance waiting for ASR.",
            self.asr_lag_seconds,
        )
        metric(
            "asr_queue_finals", "gauge", "Final utterances waiting for ASR.", self.asr_queue_finals
        )
        metric(
            "asr_queue_partials",
            "gauge",
            "Partial passes waiting for ASR.",
            self.asr_queue_partials,
        )
        metric("media_streams_active", "gauge", "Open media streams.", self.streams_active)
        metric("media_streams_total", "counter", "Media streams accepted.", self.streams_total)
        metric("media_frames_total", "counter", "Media frames received.", self.frames_total)
        metric(
            "media_frames_late_total", "counter", "Frames that arrived too late.", self.frames_late
        )
        metric(
            "media_frames_filled_total",
            "counter",
            "Missing frames filled with silence.",
            self.frames_filled,
        )
        for kind, count in sorted(self.rejected.items()):
            metric(
                "media_messages_rejected_total",
                "counter",
                "Unusable stream messages.",
                count,
                kind=kind,
            )
        metric("vad_windows_total", "counter", "VAD windows run.", self.vad_windows_total)
        metric("vad_batches_total", "counter", "VAD model calls.", self.vad_batches_total)
        metric("asr_packs_total", "counter", "Whisper passes.", self.asr_packs_total)
        metric("asr_clips_total", "counter", "Clips transcribed.", self.asr_clips_total)
        metric(
            "asr_retries_total",
            "counter",
            "Clips run again alone after a doubtful packed pass.",
            self.asr_retries_total,
        )
        metric(
            "asr_busy_seconds_total",
            "counter",
            "Time spent in Whisper passes.",
            self.asr_seconds_total,
        )
        metric(
            "utterances_final_total",
            "counter",
            "Final utterances published.",
            self.utterances_final_total,
        )
        metric(
            "utterances_partial_total",
            "counter",
            "Partial utterances published.",
            self.utterances_partial_total,
        )
        metric(
            "asr_partials_dropped_total",
            "counter",
            "Partials dropped under load.",
            self.partials_dropped_total,
        )
        for kind, count in sorted(self.redactions.items()):
            metric("redactions_total", "counter", "Spans redacted.", count, kind=kind)
        metric(
            "dtmf_suppressed_total",
            "counter",
            "Keypad digits held back during payments.",
            self.dtmf_suppressed_total,
        )
        metric(
            "sentiment_alerts_total",
            "counter",
            "Caller sentiment alerts.",
            self.sentiment_alerts_total,
        )
        metric(
            "speech_model_errors_total", "counter", "Failed model calls.", self.model_errors_total
        )
        return "\n".join(lines) + "\n"
