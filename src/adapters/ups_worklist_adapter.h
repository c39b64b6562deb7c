// The worklist adapter (MakeWorklistAdapter in tool_adapter.h): Conduit as the IHE AIW-I Task
// Requester for a pull-model tool. Dispatch schedules a UPS workitem on the tool's worklist
// (Worklist::ScheduleForJob); the tool's performer claims it over UPS-RS, retrieves the inputs
// from the Retrieve URLs the workitem gives, stores its results to the Storage URL, and
// completes the workitem, which CheckProgress reports to the job engine.
//
// The workitem (DICOM JSON, PS3.4 CC.2.5), from the job's inputs as the tool sees them
// (de-identified for a de-identified tool):
//   Patient's Name, Patient ID, Patient's Birth Date, Patient's Sex   of the first input
//   Study Instance UID, Referenced Request Sequence > Study Instance UID, Accession Number
//                                                                       of the first input
//   Scheduled Procedure Step Priority   the tool's worklist.priority
//   Worklist Label                      the tool's name
//   Procedure Step Label                "AI inference by <tool>" (at most 64 characters)
//   Scheduled Workitem Code Sequence    (110004, DCM, "Computer Aided Detection"): CID 9231
//   Scheduled Procedure Step Start DateTime   dispatch time (UTC);
//   Expected Completion DateTime        dispatch time + expected_turnaround, when declared
//   Input Readiness State               READY
//   Input Information Sequence          one item per study and series of the inputs: Type Of
//     Instances DICOM, Study and Series Instance UID, Referenced SOP Sequence (class and
//     instance of each input), WADO-RS Retrieval Sequence > Retrieve URL
//     <base>/dicom-web/jobs/<job id>/studies/<study>
//   Output Destination Sequence > STOW-RS Storage Sequence > Storage URL (0040,4073)
//     <base>/dicom-web/jobs/<job id>/studies
// where <base> is this gateway's public URL (HttpConfig::public_url), as for the DICOMweb
// push adapter's Conduit-Results-URL.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "core/status.h"
#include "store/records.h"

namespace conduit {

// The workitem's dataset (DICOM JSON text) for `job` on `tool`, read from `inputs` (Part 10
// files). Errors: kInvalidArgument without inputs or for an input that is not readable DICOM
// (naming the file, never a value); kNotFound for a missing input.
Result<std::string> BuildWorkitemDataset(const ToolConfig& tool, const JobRecord& job,
                                         const std::vector<std::filesystem::path>& inputs,
                                         const std::string& results_base_url, TimePoint now);

}  // namespace conduit
