// HL7 v2 acknowledgements (original mode, v2.5.1): building the ACK for a received message and
// reading the outcome of an ACK that a peer sent back.
// Conduit's convention with the RIS: AE means "not now, send it again later" and AR means "this
// message will never be accepted"; the commit codes CA/CE/CR read as AA/AE/AR.
// Thread safety: free functions without shared state.
#pragma once

#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "hl7/hl7_message.h"

namespace conduit {

enum class AckCode { kAccept, kError, kReject };  // AA, AE, AR

// "AA", "AE", "AR".
std::string_view AckCodeText(AckCode code);
// AA for OK; AE for a retryable status (IsRetryable); AR for every other error.
AckCode AckCodeForStatus(const Status& status);

// What the ACK says beyond its code. error_code is an HL7 table 0357 code for ERR-3
// (e.g. "207" application internal error, "200" unsupported message type); text goes to ERR-8
// and MSA-3 and must not carry patient data.
struct AckDetail {
  AckCode code = AckCode::kAccept;
  std::string error_code;
  std::string text;
};

// Who we are and when, for the ACK's MSH.
struct AckSender {
  std::string application = "CONDUIT";  // MSH-3
  std::string facility;                 // MSH-4
  std::string control_id;               // MSH-10 of the ACK; required
  TimePoint now;                        // MSH-7
};

// Builds the ACK for `received` (which needs only a readable MSH): MSH with sender and receiver
// swapped, MSH-9 "ACK^<trigger>^ACK", the received processing id and version; MSA-1 code,
// MSA-2 the received control id; for AE/AR an ERR segment (ERR-3 code, ERR-4 "E", ERR-8 text).
// The ACK uses the received message's separators. Errors: kInvalidArgument if the sender has no
// control id.
Result<Hl7Message> BuildAck(const Hl7Message& received, const AckDetail& detail,
                            const AckSender& sender);
// An AckDetail for a handler's status: AA for OK; otherwise AckCodeForStatus, error code 207,
// and the status's message as text.
AckDetail AckDetailForStatus(const Status& status);

// What a peer's ACK said.
struct AckOutcome {
  AckCode code = AckCode::kAccept;
  std::string acknowledged_control_id;  // MSA-2
  std::string error_code;               // ERR-3.1, if any
  std::string text;                     // ERR-8, else MSA-3, else ERR-3.2
};

// Reads MSA (and ERR) of an ACK. Errors: kInvalidArgument if there is no MSA or MSA-1 is not
// one of AA, AE, AR, CA, CE, CR.
Result<AckOutcome> ReadAck(const Hl7Message& ack);

// The outcome as a status: AA -> OK; AE -> kUnavailable (retry later); AR -> kInvalidArgument
// (do not retry). Messages name the control id, the code and the peer's error code, never the
// peer's text (it may quote patient data).
Status AckStatus(const AckOutcome& outcome);

// "YYYYMMDDHHMMSS" in UTC, HL7's DTM as Conduit writes it.
std::string FormatHl7Time(TimePoint t);

}  // namespace conduit
